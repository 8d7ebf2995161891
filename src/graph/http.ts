// The HTTP layer shared by the token endpoint and Graph: one undici Agent, per-request timeouts, bounded bodies,
// and one retry loop driven by a small policy (which outcomes retry, how long to wait).

import { isUtf8 } from "node:buffer";
import { randomUUID } from "node:crypto";

import { TemporaryError, WindowTooLargeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Endpoint, HttpObserver } from "../metrics.ts";
import { redact } from "../redact.ts";
import type { Clock } from "../time.ts";
import { formatDuration, sleep } from "../time.ts";
import { backoffDelay, clampRetryAfter, parseRetryAfter } from "./retry.ts";
import { Agent, type Dispatcher, request } from "./undici.ts";

export interface HttpSettings {
  httpTimeoutMs: number;
  maxRetries: number;
  retryBaseDelayMs: number;
  maxRetryAfterMs: number;
  maxPageBytes: number;
}

const BACKOFF_CAP_MS = 120_000;

export function createAgent(settings: HttpSettings): Agent {
  return new Agent({
    headersTimeout: settings.httpTimeoutMs,
    bodyTimeout: settings.httpTimeoutMs,
    connectTimeout: Math.min(settings.httpTimeoutMs, 30_000),
    keepAliveTimeout: 10_000,
    connections: 8,
  });
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | undefined>;
  /**
   * The body's bytes (valid UTF-8) from byte 1: byte 0 is left free for a header of the caller's, so a Graph page
   * becomes PostgreSQL's jsonb binary input (src/events/jsonb.ts JsonbBytes) without a copy.
   */
  body: Buffer;
  /** The body as text (decoded when read). */
  readonly text: string;
  receivedAt: Date;
  clientRequestId: string;
}

// undici error codes for failures that a retry can cure (connection reset, timeouts, truncated bodies).
const RETRYABLE_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
  "UND_ERR_CLOSED",
  "UND_ERR_ABORTED",
]);

/**
 * A response body we refuse to use: larger than MAX_PAGE_BYTES, or not valid UTF-8. Like a page that is not JSON,
 * nothing from it is stored, the request is not repeated (the same URL would answer the same), and the cycle fails
 * with a temporary error so the next one tries again.
 */
export class MalformedResponseError extends TemporaryError {
  override name = "MalformedResponseError";
  readonly code: "body_too_large" | "invalid_utf8" | "malformed_page";
  constructor(message: string, code: MalformedResponseError["code"]) {
    super(message);
    this.code = code;
  }
}

function isTimeout(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return (
    code === "UND_ERR_HEADERS_TIMEOUT" ||
    code === "UND_ERR_BODY_TIMEOUT" ||
    (error as Error | undefined)?.name === "TimeoutError"
  );
}

/** True for network-level failures worth retrying. */
function isRetryableNetworkError(error: unknown): boolean {
  const code = (error as { code?: unknown; cause?: { code?: unknown } } | undefined)?.code;
  const causeCode = (error as { cause?: { code?: unknown } } | undefined)?.cause?.code;
  return (
    (typeof code === "string" && RETRYABLE_CODES.has(code)) ||
    (typeof causeCode === "string" && RETRYABLE_CODES.has(causeCode)) ||
    (error as Error | undefined)?.name === "TimeoutError"
  );
}

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | undefined> {
  const flat: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(headers)) {
    flat[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return flat;
}

// Kept as bytes (a page goes to PostgreSQL as it came: src/events/jsonb.ts), in one buffer of the declared length
// when the response has one (each chunk is copied in as it arrives and dies young; a longer body is refused), else
// gathered and joined once.
// The byte count is checked before a chunk is kept, so a hostile body costs at most `maxBytes`; invalid UTF-8 fails
// (a page is never stored as text Graph did not send). Byte 0 of the result is free (HttpResponse.body). A buffer of
// the declared length is not zeroed: the part of a body that never arrives (a hanging peer) is never written, and
// with the process's malloc setting (src/start-settings.ts: buffers this large are mmap'd) never resident.
async function readBounded(
  body: Dispatcher.ResponseData["body"],
  declared: number | undefined,
  maxBytes: number,
  what: string,
): Promise<Buffer> {
  const whole = declared === undefined ? undefined : Buffer.allocUnsafeSlow(1 + declared);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const bytes = chunk as Buffer;
      if (size + bytes.length > maxBytes) {
        throw tooLarge(what, maxBytes);
      }
      if (whole === undefined) {
        chunks.push(bytes);
      } else if (1 + size + bytes.length <= whole.length) {
        bytes.copy(whole, 1 + size);
      } else {
        // undici never delivers more than the declared length; refused all the same rather than overrun.
        throw new MalformedResponseError(
          `${what}: the response body is longer than its Content-Length`,
          "malformed_page",
        );
      }
      size += bytes.length;
    }
  } catch (error) {
    body.destroy();
    throw error;
  }
  const result = whole?.subarray(0, 1 + size) ?? Buffer.concat([Buffer.alloc(1), ...chunks], 1 + size);
  result[0] = 0;
  if (!isUtf8(result.subarray(1))) {
    throw new MalformedResponseError(
      `${what}: the response body is not valid UTF-8 (${size} bytes); refused`,
      "invalid_utf8",
    );
  }
  return result;
}

function tooLarge(what: string, maxBytes: number): MalformedResponseError {
  return new MalformedResponseError(
    `${what}: the response body exceeds MAX_PAGE_BYTES (${maxBytes} bytes); refused unread. If Graph really sends pages this large, lower PAGE_SIZE or raise MAX_PAGE_BYTES`,
    "body_too_large",
  );
}

export interface SendOptions {
  method: "GET" | "POST";
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

/** One HTTP exchange with a per-request timeout and a bounded body. Throws on network errors. */
async function send(
  dispatcher: Dispatcher,
  url: string,
  options: SendOptions,
  settings: HttpSettings,
  clock: Clock,
  what = "HTTP request",
): Promise<HttpResponse> {
  const clientRequestId = randomUUID();
  const signal = AbortSignal.any([options.signal, AbortSignal.timeout(settings.httpTimeoutMs)]);
  const response = await request(url, {
    method: options.method,
    headers: { ...options.headers, "client-request-id": clientRequestId },
    body: options.body,
    signal,
    dispatcher,
  });
  const declared = Number(response.headers["content-length"]);
  if (Number.isFinite(declared) && declared > settings.maxPageBytes) {
    response.body.destroy();
    throw tooLarge(what, settings.maxPageBytes);
  }
  const body = await readBounded(
    response.body,
    Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined,
    settings.maxPageBytes,
    what,
  );
  return {
    status: response.statusCode,
    headers: flattenHeaders(response.headers),
    body,
    get text() {
      return body.toString("utf8", 1);
    },
    receivedAt: clock.now(),
    clientRequestId,
  };
}

export type Verdict = { done: true } | { done: false; retryAfterMs?: number; reason: string };

/**
 * Sends a request until `judge` accepts the response, retrying network errors and the responses judge marks
 * retryable, up to `maxRetries` times. Waits Retry-After (clamped) when given, else backoff with jitter.
 */
export async function sendWithRetries(
  dispatcher: Dispatcher,
  url: () => string,
  options: () => SendOptions,
  judge: (response: HttpResponse) => Verdict | Promise<Verdict>,
  ctx: {
    settings: HttpSettings;
    clock: Clock;
    log: Logger;
    what: string;
    endpoint: Endpoint;
    observer: HttpObserver;
    /** Awaited before every attempt (retries too): the throttle budget. */
    beforeAttempt?: () => Promise<void>;
  },
): Promise<HttpResponse> {
  const { settings, log } = ctx;
  let lastReason = "";
  let lastWasTimeout = false;
  for (let attempt = 0; ; attempt++) {
    await ctx.beforeAttempt?.();
    const opts = options();
    let waitMs: number | undefined;
    try {
      const response = await send(dispatcher, url(), opts, settings, ctx.clock, ctx.what);
      ctx.observer.response(ctx.endpoint, response.status);
      const verdict = await judge(response);
      if (verdict.done) {
        return response;
      }
      lastReason = redact(verdict.reason);
      lastWasTimeout = response.status === 504 || response.status === 408;
      waitMs = verdict.retryAfterMs;
    } catch (error) {
      if (opts.signal.aborted || !isRetryableNetworkError(error)) {
        throw error;
      }
      lastReason = redact(`${(error as { code?: string }).code ?? (error as Error).name}: ${(error as Error).message}`);
      lastWasTimeout = isTimeout(error);
    }
    if (attempt >= settings.maxRetries) {
      const message = `${ctx.what} failed after ${attempt + 1} attempts; last: ${lastReason}`;
      // Graph times out on queries that cover too much: the caller may split the window and try again.
      throw lastWasTimeout ? new WindowTooLargeError(message) : new TemporaryError(message);
    }
    const delay =
      waitMs !== undefined
        ? cappedRetryAfter(waitMs, settings, log, ctx.what)
        : backoffDelay(attempt + 1, settings.retryBaseDelayMs, BACKOFF_CAP_MS);
    log.warn({ what: ctx.what, attempt: attempt + 1, reason: lastReason, retryInMs: delay }, "request will be retried");
    ctx.observer.waited(ctx.endpoint, delay, waitMs !== undefined ? "retry_after" : "backoff");
    await sleep(delay, opts.signal);
  }
}

/**
 * A server-requested wait clamped to MAX_RETRY_AFTER, logged at warn when it was longer: every wait a response
 * asks for (the retry sleep and the tenant-wide pause) goes through here, so no peer can silence a tenant.
 */
export function cappedRetryAfter(
  requestedMs: number,
  settings: Pick<HttpSettings, "maxRetryAfterMs">,
  log: Logger,
  what: string,
): number {
  const capped = clampRetryAfter(requestedMs, settings.maxRetryAfterMs);
  if (capped < requestedMs) {
    log.warn(
      { what, requestedMs, cappedMs: capped },
      `Retry-After of ${Number.isFinite(requestedMs) ? formatDuration(Math.round(requestedMs)) : "forever"} capped at MAX_RETRY_AFTER (${formatDuration(capped)})`,
    );
  }
  return capped;
}

/** The Retry-After of a response in ms, if it has a usable one. */
export function retryAfterOf(response: HttpResponse, now: Date): number | undefined {
  // An HTTP-date is the server's clock: measure it against the server's own Date header when there is one, so a
  // server whose clock is off still gets the wait it meant.
  const serverNow = Date.parse(response.headers["date"] ?? "");
  return parseRetryAfter(response.headers["retry-after"], Number.isFinite(serverNow) ? new Date(serverNow) : now);
}
