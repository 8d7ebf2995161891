// Reads pages from Microsoft Graph: bearer token, retries on 429/5xx/network errors, one token renewal on 401,
// licence and permission 403s reported as what they are, and nextLinks that may only point back at Graph.

import type { Dispatcher } from "undici";

import { AccessError, CredentialError, GraphProtocolError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { HttpObserver } from "../metrics.ts";
import { redact } from "../redact.ts";
import type { GraphBudget, Priority } from "./budget.ts";
import type { GraphClock } from "./clock.ts";
import {
  cappedRetryAfter,
  type HttpResponse,
  type HttpSettings,
  MalformedResponseError,
  retryAfterOf,
  sendWithRetries,
} from "./http.ts";
import type { TokenProvider } from "./token.ts";
import { JSONB_BINARY_VERSION, type JsonbBytes, type ScannedPage, splitPage } from "../events/jsonb.ts";

export interface BudgetKey {
  budget: GraphBudget;
  tenantId: string;
  appId: string;
}

/**
 * A page's body as received, not parsed yet: the reader holds a fetched page in this form until the process's page
 * budget (src/ingest/page-budget.ts) lets it parse, so pages fetched ahead by many slices or tenants cost their bytes
 * only, never their parse (~3× the bytes).
 */
export interface PageBody {
  /** The body as received (JSON, UTF-8), for storing the events as they came (src/events/jsonb.ts). */
  json: JsonbBytes;
  requestId: string | undefined;
  /** The body's length in bytes. */
  bytes: number;
}

/**
 * A page checked to be a Graph collection, not parsed whole: its events are parsed one at a time when they are
 * classified (src/events/classify.ts pageEvents), which also finishes checking that the text is JSON.
 */
export interface Page extends PageBody {
  /** The text's event array: each element's span (jsonb.ts). */
  scan: ScannedPage;
  /** How many events the page holds. */
  length: number;
  nextLink: string | undefined;
}

/**
 * A page body that is not JSON, lacks a `value` array, is larger than MAX_PAGE_BYTES or is not valid UTF-8: nothing
 * from it is stored, the cycle fails (temporary, exit 75) and the next one retries.
 */
export class MalformedPageError extends MalformedResponseError {
  override name = "MalformedPageError";
  constructor(message: string, code: MalformedResponseError["code"] = "malformed_page") {
    super(message, code);
  }
}

interface GraphErrorBody {
  error?: { code?: unknown; message?: unknown };
}

function graphError(response: HttpResponse): { code: string; message: string } {
  try {
    const body = JSON.parse(response.text) as GraphErrorBody;
    const code = body.error?.code;
    const message = body.error?.message;
    return {
      code: typeof code === "string" ? redact(code).slice(0, 200) : `HTTP ${response.status}`,
      message: typeof message === "string" ? redact(message).slice(0, 2000) : "",
    };
  } catch {
    return { code: `HTTP ${response.status}`, message: "" };
  }
}

function accessErrorFor(code: string, message: string): AccessError {
  if (code === "Authentication_RequestFromNonPremiumTenantOrB2CTenant") {
    return new AccessError(
      `Graph refuses the sign-in log: the tenant has no Microsoft Entra ID P1 or P2 licence ("${message}")`,
      code,
      "sign-in logs through Graph need Entra ID P1 or P2 in the tenant (a trial works); assign the licence and wait up to a day",
    );
  }
  return new AccessError(
    `Graph refuses the sign-in log: the application lacks permission ("${message}")`,
    code,
    "grant the application permission AuditLog.Read.All (type Application) to the app registration and click 'Grant admin consent'",
  );
}

export class GraphClient {
  readonly #origin: string;
  readonly #tokens: TokenProvider;
  readonly #dispatcher: Dispatcher;
  readonly #settings: HttpSettings;
  readonly #clock: GraphClock;
  readonly #log: Logger;
  readonly #observer: HttpObserver;
  readonly #budget: BudgetKey | undefined;

  constructor(
    graphEndpoint: string,
    deps: {
      tokens: TokenProvider;
      dispatcher: Dispatcher;
      settings: HttpSettings;
      clock: GraphClock;
      log: Logger;
      observer: HttpObserver;
      /** The shared throttle budget and this client's place in it. */
      budget?: BudgetKey;
    },
  ) {
    this.#origin = new URL(graphEndpoint).origin;
    this.#tokens = deps.tokens;
    this.#dispatcher = deps.dispatcher;
    this.#settings = deps.settings;
    this.#clock = deps.clock;
    this.#log = deps.log;
    this.#observer = deps.observer;
    this.#budget = deps.budget;
  }

  /** The Graph origin this client talks to. */
  get endpoint(): string {
    return this.#origin;
  }

  get clock(): GraphClock {
    return this.#clock;
  }

  /** Obtains a token (cached if still valid), which also tells us Graph's clock. */
  async prepare(signal: AbortSignal): Promise<void> {
    await this.#tokens.getToken(signal);
  }

  /** Fails unless `url` is on the Graph origin: the bearer token must never travel anywhere else. */
  assertGraphUrl(url: string): void {
    let origin: string;
    try {
      origin = new URL(url).origin;
    } catch {
      throw new GraphProtocolError(`Graph returned an unusable nextLink: ${JSON.stringify(url.slice(0, 200))}`);
    }
    if (origin !== this.#origin) {
      throw new GraphProtocolError(`refusing a nextLink to ${origin}: it is not the Graph endpoint ${this.#origin}`);
    }
  }

  /** GETs and parses one page (getPageBody, then parsePage). */
  async getPage(url: string, signal: AbortSignal, priority: Priority = "tail"): Promise<Page> {
    return parsePage(await this.getPageBody(url, signal, priority));
  }

  /** GETs one page's body, unparsed. Retries transient failures; throws classified errors otherwise. */
  async getPageBody(url: string, signal: AbortSignal, priority: Priority = "tail"): Promise<PageBody> {
    this.assertGraphUrl(url);
    let token = await this.#tokens.getToken(signal);
    let renewedAfter401 = false;
    const response = await sendWithRetries(
      this.#dispatcher,
      () => url,
      () => ({
        method: "GET",
        headers: {
          authorization: `Bearer ${token}`,
          accept: "application/json",
          prefer: "include-unknown-enum-members",
        },
        signal,
      }),
      async (res) => {
        this.#clock.observe(res.headers["date"]);
        if (res.status === 200) {
          return { done: true };
        }
        const { code, message } = graphError(res);
        if (res.status === 401) {
          if (renewedAfter401) {
            throw new CredentialError(`Graph rejects a freshly issued token (${code}: ${message})`, code);
          }
          renewedAfter401 = true;
          this.#tokens.invalidate();
          token = await this.#tokens.getToken(signal);
          return { done: false, reason: `HTTP 401 ${code}; token renewed`, retryAfterMs: 0 };
        }
        if (res.status === 403) {
          throw accessErrorFor(code, message);
        }
        if (res.status === 429 || res.status === 408 || res.status >= 500) {
          const requested = retryAfterOf(res, res.receivedAt);
          // Capped (and logged) here, once: the retry sleep and the tenant-wide pause both use the capped value.
          const retryAfterMs =
            requested === undefined ? undefined : cappedRetryAfter(requested, this.#settings, this.#log, "Graph");
          if (res.status === 429 && retryAfterMs !== undefined && this.#budget) {
            // Everyone polling this tenant waits, not just this request.
            this.#budget.budget.penalize(this.#budget.tenantId, Date.now() + retryAfterMs);
          }
          return { done: false, reason: `HTTP ${res.status} ${code}`, retryAfterMs };
        }
        throw new GraphProtocolError(
          redact(
            `Graph answered HTTP ${res.status} ${code}: ${message} (request-id ${res.headers["request-id"]?.slice(0, 100) ?? "?"})`,
          ),
          res.status,
        );
      },
      {
        settings: this.#settings,
        clock: this.#clock,
        log: this.#log,
        what: "Graph page request",
        endpoint: "graph",
        observer: this.#observer,
        ...(this.#budget
          ? {
              beforeAttempt: () => {
                const b = this.#budget as BudgetKey;
                return b.budget.take(b.tenantId, b.appId, signal, priority);
              },
            }
          : {}),
      },
    ).catch((error: unknown) => {
      // A body refused while it streamed (too large, not UTF-8) is a malformed page like any other.
      throw error instanceof MalformedResponseError && !(error instanceof MalformedPageError)
        ? new MalformedPageError(error.message, error.code)
        : error;
    });
    const json = response.body;
    json[0] = JSONB_BINARY_VERSION;
    return { json, requestId: response.headers["request-id"], bytes: json.length - 1 };
  }
}

/**
 * Checks a page's body without parsing it whole (jsonb.ts splitPage); a body that is not a Graph collection throws
 * MalformedPageError. An event that is not JSON is found when the events are classified (pageEvents).
 */
export function parsePage(page: PageBody): Page {
  let split: ReturnType<typeof splitPage>;
  try {
    split = splitPage(page.json);
  } catch {
    throw notJson(page);
  }
  const { envelope, scan } = split;
  const value = (envelope as { value?: unknown } | null)?.value;
  if (!Array.isArray(value) || value.length > 0 || scan.array === undefined) {
    throw new MalformedPageError(`Graph returned a page without a value array (request-id ${page.requestId ?? "?"})`);
  }
  const next = (envelope as { "@odata.nextLink"?: unknown })["@odata.nextLink"];
  if (next !== undefined && typeof next !== "string") {
    throw new MalformedPageError("Graph returned a page whose @odata.nextLink is not a string");
  }
  return { ...page, scan, length: scan.elements.length, nextLink: next };
}

/** The error for a page body that is not JSON (also when one of its events is not). */
export function notJson(page: PageBody): MalformedPageError {
  return new MalformedPageError(
    `Graph returned a page that is not JSON (${page.bytes} bytes, request-id ${page.requestId ?? "?"})`,
  );
}
