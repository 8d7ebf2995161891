// Tiny fetch helpers for tests and scripts that talk to a running simulator.
import type { Simulator } from "./server.ts";

export interface SimResponse {
  status: number;
  headers: Headers;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function wrap(r: Response): Promise<SimResponse> {
  const text = await r.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, headers: r.headers, text, json };
}

export async function requestToken(
  sim: Pick<Simulator, "url" | "tenantId" | "clientId" | "clientSecret">,
  over: Record<string, string> = {},
  tenant = sim.tenantId,
): Promise<SimResponse> {
  const body = new URLSearchParams({
    grant_type: "client_credentials",
    client_id: sim.clientId,
    client_secret: sim.clientSecret,
    scope: "https://graph.microsoft.com/.default",
    ...over,
  });
  return wrap(await fetch(`${sim.url}/${tenant}/oauth2/v2.0/token`, { method: "POST", body }));
}

export async function getToken(
  sim: Pick<Simulator, "url" | "tenantId" | "clientId" | "clientSecret">,
  tenant?: string,
): Promise<string> {
  const r = await requestToken(sim, {}, tenant);
  if (r.status !== 200) {
    throw new Error(`token request failed: ${r.status} ${r.text}`);
  }
  return String(r.json.access_token);
}

/** GET a path (or absolute URL) with an optional bearer token. */
export async function graphGet(
  sim: Pick<Simulator, "url">,
  pathOrUrl: string,
  token?: string,
  init: RequestInit = {},
): Promise<SimResponse> {
  const url = /^https?:/.test(pathOrUrl) ? pathOrUrl : `${sim.url}${pathOrUrl}`;
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  return wrap(await fetch(url, { ...init, headers }));
}

/** Follows nextLinks until the end; returns every item and the page sizes. */
export async function crawl(
  sim: Pick<Simulator, "url">,
  path: string,
  token: string,
): Promise<{ items: Array<Record<string, unknown>>; pages: number[] }> {
  const items: Array<Record<string, unknown>> = [];
  const pages: number[] = [];
  let next: string | undefined = path;
  while (next) {
    const r = await graphGet(sim, next, token);
    if (r.status !== 200) {
      throw new Error(`crawl got ${r.status}: ${r.text}`);
    }
    const value = r.json.value as Array<Record<string, unknown>>;
    items.push(...value);
    pages.push(value.length);
    next = r.json["@odata.nextLink"];
  }
  return { items, pages };
}
