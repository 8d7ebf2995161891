// GET /{v1.0|beta}/auditLogs/signIns and …/directoryAudits: query validation, keyset paging, skiptokens.
import { createHmac } from "node:crypto";
import { parseQuery, QueryError } from "./filter.ts";
import type { Api, Resource } from "./filter.ts";
import { hash32, int } from "./random.ts";
import type { Rng } from "./random.ts";
import { versionJson } from "./store.ts";
import type { Cursor, Universe } from "./store.ts";

export interface ListInput {
  universe: Universe;
  secret: Buffer;
  api: Api;
  tenantId: string;
  params: URLSearchParams;
  nowMs: number;
  baseUrl: string; // scheme://host of the request
  path: string;
  shortPageRate: number;
  rng: Rng;
  /** Default signIns; the universe must hold events of this resource. */
  resource?: Resource;
}
export interface ListPage {
  context: string;
  items: string[];
  nextLink?: string;
}

function queryHash(
  api: Api,
  tenantId: string,
  filterText: string,
  order: string,
  top: number,
  resource: Resource,
): string {
  // Sign-in tokens hash as before (resource left out), so existing skiptokens stay stable.
  return (
    resource === "signIns"
      ? hash32(api, tenantId, filterText, order, top)
      : hash32(api, tenantId, filterText, order, top, resource)
  ).toString(36);
}

function encodeSkipToken(secret: Buffer, c: Cursor, qh: string): string {
  const payload = Buffer.from(JSON.stringify([c.sec, c.frac, c.key, qh])).toString("base64url");
  const mac = createHmac("sha256", secret).update(payload).digest("base64url").slice(0, 22);
  return `${payload}.${mac}`;
}

function decodeSkipToken(secret: Buffer, token: string, qh: string): Cursor {
  const bad = (): QueryError => new QueryError("Invalid Skip Token");
  const [payload, mac, extra] = token.split(".");
  if (!payload || !mac || extra !== undefined) {
    throw bad();
  }
  const want = createHmac("sha256", secret).update(payload).digest("base64url").slice(0, 22);
  if (want !== mac) {
    throw bad();
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  if (!Array.isArray(parsed) || parsed.length !== 4) {
    throw bad();
  }
  const [sec, frac, key, h] = parsed as unknown[];
  if (typeof sec !== "number" || typeof frac !== "number" || typeof key !== "string" || h !== qh) {
    throw bad();
  }
  return { sec, frac, key };
}

/** Rebuilds the request URL with a new $skiptoken, keeping every other option verbatim. */
function nextLinkFor(baseUrl: string, path: string, params: URLSearchParams, token: string): string {
  const parts: string[] = [];
  for (const [k, v] of params) {
    if (k.toLowerCase() === "$skiptoken") {
      continue;
    }
    parts.push(`${k}=${encodeURIComponent(v)}`);
  }
  parts.push(`$skiptoken=${token}`);
  return `${baseUrl}${path}?${parts.join("&")}`;
}

/** Throws QueryError for a 400. */
export function listSignIns(i: ListInput): ListPage {
  const resource = i.resource ?? "signIns";
  const q = parseQuery(i.params, i.api, resource);
  const qh = queryHash(i.api, i.tenantId, q.filterText, q.order, q.top, resource);
  const after = q.skiptoken === undefined ? undefined : decodeSkipToken(i.secret, q.skiptoken, qh);
  let limit = q.top;
  if (i.shortPageRate > 0 && q.top > 1 && i.rng() < i.shortPageRate) {
    limit = int(i.rng, Math.ceil(q.top / 2), q.top - 1);
  }
  const page = i.universe.page(i.tenantId, q.filter, q.order, limit, i.nowMs, after);
  const items = page.items.map((v) => versionJson(v, i.api));
  const context = `${i.baseUrl}/${i.api}/$metadata#auditLogs/${resource}`;
  if (page.more && page.last) {
    return {
      context,
      items,
      nextLink: nextLinkFor(i.baseUrl, i.path, i.params, encodeSkipToken(i.secret, page.last, qh)),
    };
  }
  return { context, items };
}

export function renderPage(p: ListPage): string {
  let s = `{"@odata.context":${JSON.stringify(p.context)},"value":[${p.items.join(",")}]`;
  if (p.nextLink !== undefined) {
    s += `,"@odata.nextLink":${JSON.stringify(p.nextLink)}`;
  }
  return s + "}";
}
