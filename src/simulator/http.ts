// Small HTTP helpers and the Graph / Entra ID error body shapes.
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

import { sleep as safeSleep } from "../time.ts";

const GRAPH_JSON =
  "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8";
export const AAD_JSON = "application/json; charset=utf-8";

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  now: Date;
  requestId: string;
  clientRequestId: string;
  /** Set by a fault: headers that replace the usual ones (e.g. a Date from 2001), and a rewrite of the body. */
  headerOverrides?: Record<string, string>;
  rewriteBody?: (status: number, body: Buffer) => Buffer;
}

export function makeCtx(req: IncomingMessage, res: ServerResponse, now: Date): Ctx {
  const requestId = randomUUID();
  const crid = req.headers["client-request-id"];
  return { req, res, now, requestId, clientRequestId: typeof crid === "string" && crid ? crid : requestId };
}

export function graphHeaders(ctx: Ctx, contentType = GRAPH_JSON): Record<string, string> {
  return {
    "Content-Type": contentType,
    Date: ctx.now.toUTCString(),
    "request-id": ctx.requestId,
    "client-request-id": ctx.clientRequestId,
    "x-ms-ags-diagnostic": JSON.stringify({
      ServerInfo: { DataCenter: "Simulator", Slice: "E", Ring: "0", ScaleUnit: "000", RoleInstance: "SIM" },
    }),
    "Strict-Transport-Security": "max-age=31536000",
    "Cache-Control": "no-cache",
  };
}

export function send(ctx: Ctx, status: number, body: string | Buffer, headers: Record<string, string>): void {
  const raw = typeof body === "string" ? Buffer.from(body) : body;
  const buf = ctx.rewriteBody ? ctx.rewriteBody(status, raw) : raw;
  ctx.res.writeHead(status, { ...headers, ...ctx.headerOverrides, "Content-Length": String(buf.length) });
  ctx.res.end(buf);
}

export function graphErrorBody(ctx: Ctx, code: string, message: string): string {
  return JSON.stringify({
    error: {
      code,
      message,
      innerError: {
        date: ctx.now.toISOString().slice(0, 19),
        "request-id": ctx.requestId,
        "client-request-id": ctx.clientRequestId,
      },
    },
  });
}

export function sendGraphError(
  ctx: Ctx,
  status: number,
  code: string,
  message: string,
  extra: Record<string, string> = {},
): void {
  send(ctx, status, graphErrorBody(ctx, code, message), { ...graphHeaders(ctx), ...extra });
}

const DEFAULT_CODES: Record<number, [string, string]> = {
  400: ["BadRequest", "Bad request."],
  401: ["InvalidAuthenticationToken", "Access token validation failure."],
  403: ["Forbidden", "Forbidden."],
  404: ["NotFound", "Resource not found."],
  429: ["TooManyRequests", "This request is throttled. Please try again after some time."],
  500: ["InternalServerError", "An internal server error occurred."],
  502: ["BadGateway", "Bad gateway."],
  503: ["ServiceUnavailable", "The service is temporarily unavailable. Please try again later."],
  504: ["GatewayTimeout", "The gateway timed out."],
};
export function defaultGraphError(status: number): [string, string] {
  return DEFAULT_CODES[status] ?? ["UnknownError", `HTTP ${status}`];
}

export function aadErrorBody(ctx: Ctx, error: string, code: number, description: string): string {
  const ts = ctx.now.toISOString().replace("T", " ").slice(0, 19) + "Z";
  return JSON.stringify({
    error,
    error_description: `AADSTS${code}: ${description} Trace ID: ${ctx.requestId} Correlation ID: ${ctx.clientRequestId} Timestamp: ${ts}`,
    error_codes: [code],
    timestamp: ts,
    trace_id: ctx.requestId,
    correlation_id: ctx.clientRequestId,
    error_uri: `https://login.microsoftonline.com/error?code=${code}`,
  });
}

export function readBody(req: IncomingMessage, limit = 10 * 1024 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error("body too large"));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Any delay a fault asks for, overflow-safe (a `hang` of 30 days must not fire after 1 ms). */
export const sleep = (ms: number): Promise<void> => safeSleep(ms);
