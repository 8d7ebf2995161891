// The simulator: one node:http server standing in for login.microsoftonline.com
// and graph.microsoft.com. See SimulatorOptions for the knobs.
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { IncomingMessage, ServerResponse } from "node:http";
import { handleAdmin } from "./admin.ts";
import { TokenAuthority } from "./auth.ts";
import { FaultScript } from "./faults.ts";
import type { FaultRule } from "./faults.ts";
import { QueryError } from "./filter.ts";
import type { Resource } from "./filter.ts";
import {
  AAD_JSON,
  aadErrorBody,
  defaultGraphError,
  graphErrorBody,
  graphHeaders,
  makeCtx,
  readBody,
  send,
  sendGraphError,
  sleep,
} from "./http.ts";
import type { Ctx } from "./http.ts";
import { rngFor } from "./random.ts";
import { listSignIns, renderPage } from "./signins.ts";
import type { ListPage } from "./signins.ts";
import { Universe } from "./store.ts";
import { Throttle } from "./throttle.ts";
import type { RequestRecord, Simulator, SimulatorMode, SimulatorOptions } from "./types.ts";

export type { Simulator, SimulatorMode, SimulatorOptions } from "./types.ts";

const DEFAULT_TENANT = "00000000-0000-4000-8000-000000000001";
export const DEFAULT_CLIENT = "11111111-1111-4111-8111-111111111111";
const DEFAULT_SECRET = "sim-secret";
const TOKEN_RE = /^\/([^/]+)\/oauth2\/v2\.0\/token$/;
const LIST_RE = /^\/(v1\.0|beta)\/auditLogs\/(signIns|directoryAudits)$/i;

export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const seed = opts.seed ?? 1;
  const tenants = opts.tenants?.length ? opts.tenants : [DEFAULT_TENANT];
  const clients = opts.clients ?? { [DEFAULT_CLIENT]: DEFAULT_SECRET };
  const timeScale = opts.timeScale ?? 1;
  let offsetMs = opts.clockOffsetMs ?? 0;
  const now = (): Date => new Date((opts.clock ? opts.clock().getTime() : Date.now()) + offsetMs);
  let mode: SimulatorMode = opts.mode ?? "normal";
  const universeConfig = {
    seed,
    users: opts.users ?? 50,
    signInsPerUserPerDay: opts.signInsPerUserPerDay ?? 20,
    arrivalLatency: opts.arrivalLatency ?? false,
    republishRate: opts.republishRate ?? 0,
    generate: opts.generate ?? true,
    genStartMs: now().getTime() - (opts.historyDays ?? 8) * 86_400_000,
    ...(opts.cacheEvents ? { cacheEvents: opts.cacheEvents } : {}),
    ...(opts.auditsPerUserPerDay !== undefined ? { auditsPerUserPerDay: opts.auditsPerUserPerDay } : {}),
    quietWeekends: opts.quietWeekends ?? false,
  };
  const universe = new Universe(universeConfig);
  const audits = new Universe(universeConfig, "directoryAudits");
  const auth = new TokenAuthority(tenants, clients, opts.tokenLifetimeSeconds ?? 3599, {
    ...(opts.clientCertificates ? { certificates: opts.clientCertificates } : {}),
    ...(opts.federatedTokens ? { federatedTokens: opts.federatedTokens } : {}),
  });
  const faults = new FaultScript(rngFor(seed, "faults"), opts.faults ?? []);
  const pageRng = rngFor(seed, "pages");
  const throttle = opts.throttle ? new Throttle(opts.throttle, timeScale) : undefined;
  const secret = randomBytes(32);
  let log: RequestRecord[] = [];
  let seqAll = 0;
  let graphN = 0;
  let tokenN = 0;
  const firstClient = Object.keys(clients)[0] ?? DEFAULT_CLIENT;

  const sim: Simulator = {
    url: "",
    tenantId: tenants[0] ?? DEFAULT_TENANT,
    clientId: firstClient,
    clientSecret: clients[firstClient] ?? DEFAULT_SECRET,
    now,
    addEvents: (events, o = {}) => universe.add(o.tenantId ?? sim.tenantId, events, (o.visibleAt ?? now()).getTime()),
    republish: (id, patch, o = {}) => {
      const at = (o.visibleAt ?? now()).getTime();
      if (!universe.republish(o.tenantId ?? sim.tenantId, id, patch, at, Math.max(at, now().getTime()))) {
        throw new Error(`unknown sign-in id ${id}`);
      }
    },
    visibleEvents: (tenantId, at) => universe.visible(tenantId ?? sim.tenantId, (at ?? now()).getTime()),
    addAudits: (events, o = {}) => audits.add(o.tenantId ?? sim.tenantId, events, (o.visibleAt ?? now()).getTime()),
    visibleAudits: (tenantId, at) => audits.visible(tenantId ?? sim.tenantId, (at ?? now()).getTime()),
    // Request numbers in rules count from the moment the rules are set.
    setFaults: (rules) => {
      faults.set(rules);
      graphN = 0;
      tokenN = 0;
    },
    setMode: (m) => {
      mode = m ?? "normal";
    },
    setClockOffset: (ms) => {
      offsetMs = ms;
    },
    reset: () => {
      mode = opts.mode ?? "normal";
      offsetMs = opts.clockOffsetMs ?? 0;
      sim.setFaults(opts.faults ?? []);
    },
    requests: () => [...log],
    resetRequests: () => {
      log = [];
    },
    issuedTokens: () => auth.issued(),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname;
    if (path.startsWith("/_admin/")) {
      return handleAdmin(req, res, url, sim);
    }
    const ctx = makeCtx(req, res, now());
    const rec: RequestRecord = {
      n: ++seqAll,
      at: ctx.now.toISOString(),
      method: req.method ?? "",
      path,
      query: Object.fromEntries(url.searchParams),
      status: 0,
      tenantId: null,
      authorized: false,
      hadAuthorization: req.headers.authorization !== undefined,
      kind: "other",
    };
    log.push(rec);
    res.on("finish", () => {
      rec.status = res.statusCode;
    });
    const tokenMatch = TOKEN_RE.exec(path);
    if (tokenMatch && req.method === "POST") {
      rec.kind = "token";
      rec.seq = ++tokenN;
      rec.tenantId = decodeURIComponent(tokenMatch[1] ?? "");
      const body = await readBody(req);
      const fault = faults.pick(true, tokenN, path);
      if (fault) {
        rec.fault = fault.kind;
        if (hostileFault(ctx, fault, true, body) || (await applyEarlyFault(ctx, fault, true))) {
          return;
        }
      }
      const t = auth.issue(ctx, rec.tenantId, body);
      rec.authorized = t !== undefined;
      return;
    }
    const graphMatch = LIST_RE.exec(path);
    const resource: Resource = graphMatch?.[2]?.toLowerCase() === "directoryaudits" ? "directoryAudits" : "signIns";
    if (!graphMatch || req.method !== "GET") {
      return sendGraphError(
        ctx,
        graphMatch ? 405 : 404,
        graphMatch ? "Request_BadRequest" : "UnknownError",
        graphMatch
          ? "Specified HTTP method is not allowed for the request target."
          : `Resource not found for the segment '${path.split("/").pop() ?? ""}'.`,
      );
    }
    rec.kind = "graph";
    rec.seq = ++graphN;
    const fault = faults.pick(false, graphN, path);
    if (fault) {
      rec.fault = fault.kind;
    }
    if (fault?.kind === "expire-token") {
      auth.revokeAll();
      return sendGraphError(
        ctx,
        401,
        "InvalidAuthenticationToken",
        "Lifetime validation failed, the token is expired.",
      );
    }
    if (fault && (hostileFault(ctx, fault, false, "") || (await applyEarlyFault(ctx, fault, false, resource)))) {
      return;
    }
    const check = auth.check(req.headers.authorization, ctx.now.getTime());
    if (!check.ok) {
      return sendGraphError(ctx, 401, "InvalidAuthenticationToken", check.message, {
        "WWW-Authenticate": `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`,
      });
    }
    rec.authorized = true;
    rec.tenantId = check.info.tenantId;
    if (throttle) {
      const verdict = throttle.admit(check.info.clientId, check.info.tenantId, ctx.now.getTime());
      if (!verdict.ok) {
        const extra: Record<string, string> =
          opts.throttle && opts.throttle.retryAfter === false
            ? {}
            : { "Retry-After": String(Math.max(1, Math.ceil(verdict.waitMs / 1000))) };
        return sendGraphError(
          ctx,
          429,
          "TooManyRequests",
          "This request is throttled. Please try again after some time.",
          extra,
        );
      }
    }
    if (mode === "no-licence") {
      return sendGraphError(
        ctx,
        403,
        "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
        "Neither tenant is B2C or tenant doesn't have premium license",
      );
    }
    if (mode === "no-permission") {
      return sendGraphError(
        ctx,
        403,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
      );
    }
    let page: ListPage;
    try {
      page = listSignIns({
        universe: resource === "signIns" ? universe : audits,
        resource,
        secret,
        api: graphMatch[1]?.toLowerCase() === "beta" ? "beta" : "v1.0",
        tenantId: check.info.tenantId,
        params: url.searchParams,
        nowMs: ctx.now.getTime(),
        baseUrl: `http://${req.headers.host ?? new URL(sim.url).host}`,
        path,
        shortPageRate: opts.pageSize?.shortPageRate ?? 0,
        rng: pageRng,
      });
    } catch (err) {
      if (err instanceof QueryError) {
        return sendGraphError(ctx, 400, err.code, err.message);
      }
      throw err;
    }
    if (opts.pageLatencyMs) {
      await sleep(opts.pageLatencyMs / timeScale);
    }
    if (fault?.kind === "foreign-next-link") {
      const host = /^https?:\/\//.test(fault.host) ? fault.host : `https://${fault.host}`;
      const link = page.nextLink ?? `${sim.url}${path}?$skiptoken=end`;
      page.nextLink = host.replace(/\/$/, "") + link.replace(/^https?:\/\/[^/]+/, "");
    }
    const body = Buffer.from(renderPage(page));
    const headers = graphHeaders(ctx);
    if (fault?.kind === "truncate") {
      res.writeHead(200, { ...headers, "Content-Length": String(body.length + 1024) });
      res.write(body, () => res.socket?.destroy());
      return;
    }
    if (fault?.kind === "reset" && fault.afterBytes !== undefined) {
      res.writeHead(200, { ...headers, "Content-Length": String(body.length) });
      res.write(body.subarray(0, Math.min(fault.afterBytes, body.length)), () => res.socket?.destroy());
      return;
    }
    send(ctx, 200, body, headers);
  }

  /**
   * Hostile or broken peers: a Date header from another year, an implausible expires_in, a huge body of tiny items,
   * invalid UTF-8, an error that echoes the request. Returns true when the response was handled; otherwise the
   * exchange goes on normally with the fault's changes applied when it is sent.
   */
  function hostileFault(ctx: Ctx, fault: FaultRule, isToken: boolean, requestBody: string): boolean {
    switch (fault.kind) {
      case "date":
        ctx.headerOverrides = { Date: fault.date };
        return false;
      case "token-lifetime":
        ctx.rewriteBody = (status, body) => {
          if (status !== 200) {
            return body;
          }
          const parsed = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
          if (fault.expiresIn === null) {
            delete parsed.expires_in;
          } else {
            parsed.expires_in = fault.expiresIn;
          }
          return Buffer.from(JSON.stringify(parsed));
        };
        return false;
      case "invalid-utf8":
        ctx.rewriteBody = (status, body) => {
          // Inside a string value (the first event's, else the @odata.context URL), so only the encoding is wrong.
          const at = body.indexOf('"id":"');
          const cut = at >= 0 ? at + 6 : body.indexOf("http");
          return Buffer.concat([body.subarray(0, cut), Buffer.from([0xff, 0xfe]), body.subarray(cut)]);
        };
        return false;
      case "echo":
        if (isToken) {
          send(
            ctx,
            fault.status ?? 401,
            aadErrorBody(ctx, "invalid_client", 7000215, `Invalid client secret provided. Request was: ${requestBody}`),
            { "Content-Type": AAD_JSON, Date: ctx.now.toUTCString() },
          );
        } else {
          sendGraphError(
            ctx,
            fault.status ?? 400,
            "BadRequest",
            `Unexpected request ${ctx.req.url ?? ""} with Authorization: ${ctx.req.headers.authorization ?? ""}`,
          );
        }
        return true;
      case "oversized":
        if (isToken) {
          return false;
        }
        streamTinyItems(ctx, fault.bytes ?? 60_000_000, fault.contentLength === true);
        return true;
      default:
        return false;
    }
  }

  /** A 200 page `{"value":[1,1,…]}` of exactly `bytes` bytes, written as the client reads it. */
  function streamTinyItems(ctx: Ctx, bytes: number, withLength: boolean): void {
    const head = Buffer.from('{"value":[1');
    const tail = Buffer.from("]}");
    const chunk = Buffer.from(",1".repeat(32_768));
    const headers = graphHeaders(ctx);
    ctx.res.writeHead(200, withLength ? { ...headers, "Content-Length": String(bytes) } : headers);
    let left = Math.max(0, bytes - head.length - tail.length);
    ctx.res.write(head);
    const pump = (): void => {
      while (left > 0) {
        const size = Math.min(chunk.length, left - (left % 2));
        const piece = size > 0 ? chunk.subarray(0, size) : Buffer.from(" ");
        left -= piece.length;
        if (!ctx.res.write(piece)) {
          ctx.res.once("drain", pump);
          return;
        }
      }
      if (!ctx.res.destroyed) {
        ctx.res.end(tail);
      }
    };
    ctx.res.on("close", () => {
      left = 0;
    });
    pump();
  }

  /** Faults that replace the response entirely. Returns true when the response was handled. */
  async function applyEarlyFault(
    ctx: Ctx,
    fault: FaultRule,
    isToken: boolean,
    resource: Resource = "signIns",
  ): Promise<boolean> {
    const context = `${sim.url}/v1.0/$metadata#auditLogs/${resource}`;
    switch (fault.kind) {
      case "status": {
        const [code, message] = defaultGraphError(fault.status);
        const body =
          fault.body ??
          (isToken
            ? aadErrorBody(
                ctx,
                fault.status >= 500 ? "temporarily_unavailable" : "invalid_request",
                fault.status >= 500 ? 50001 : 90000,
                message,
              )
            : graphErrorBody(ctx, code, message));
        const headers = isToken
          ? { "Content-Type": fault.contentType ?? AAD_JSON, Date: ctx.now.toUTCString() }
          : graphHeaders(ctx, fault.contentType);
        send(
          ctx,
          fault.status,
          body,
          fault.retryAfter !== undefined ? { ...headers, "Retry-After": fault.retryAfter } : headers,
        );
        return true;
      }
      case "reset":
        if (fault.afterBytes !== undefined && !isToken) {
          return false;
        }
        ctx.req.socket.destroy();
        return true;
      case "hang":
        if (fault.ms === undefined) {
          return true;
        } // never answer; the client must time out
        await sleep(fault.ms / timeScale);
        return false;
      case "malformed":
        send(
          ctx,
          200,
          `{"@odata.context":"${context}","value":[{"id":"4b1f3c2e-9a7d-4e1b","createdDateTime":2025-03-04T08:17:42Z,`,
          graphHeaders(ctx),
        );
        return true;
      case "no-value":
        send(
          ctx,
          200,
          isToken ? `{"token_type":"Bearer"}` : JSON.stringify({ "@odata.context": context }),
          isToken ? { "Content-Type": AAD_JSON } : graphHeaders(ctx),
        );
        return true;
      case "html":
        send(
          ctx,
          fault.status ?? 200,
          "<!DOCTYPE html><html><head><title>Sign in to your network</title></head><body><h1>Proxy authentication required</h1></body></html>",
          { "Content-Type": "text/html; charset=utf-8", Date: ctx.now.toUTCString() },
        );
        return true;
      default:
        return false;
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { "Content-Type": "text/plain" });
        res.end(String(err));
      } else {
        res.destroy();
      }
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  sim.url = `http://${host}:${addr.port}`;
  return sim;
}
