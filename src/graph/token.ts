// OAuth2 client-credentials tokens for Graph: cached, renewed before expiry, one request in flight at a time.

import type { Dispatcher } from "undici";

import { CredentialError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { HttpObserver } from "../metrics.ts";
import { redact, registerSecret } from "../redact.ts";
import { HOUR, MINUTE, SECOND, sleep } from "../time.ts";
import type { GraphClock } from "./clock.ts";
import type { CredentialFields } from "./credentials.ts";
import { type HttpResponse, type HttpSettings, retryAfterOf, sendWithRetries } from "./http.ts";

export interface TokenProvider {
  /** A valid access token (cached until shortly before it expires). */
  getToken(signal: AbortSignal): Promise<string>;
  /** Forgets the cached token, e.g. after Graph answered 401. */
  invalidate(): void;
}

export interface ClientCredentials {
  authorityHost: string;
  tenantId: string;
  clientId: string;
  /** The secret or client assertion for each request. */
  fields: CredentialFields;
  /** `{GRAPH_ENDPOINT}/.default` */
  scope: string;
}

/** Renew this long before expiry (or at half the lifetime for short-lived tokens). */
const RENEW_MARGIN_MS = 5 * MINUTE;

/**
 * Bounds on the lifetime a token is cached for, whatever `expires_in` says (Entra ID issues 60–90 minutes). A token
 * said to live 0 s (or a negative, missing or unreadable time) is cached for the minimum: were it taken at its word,
 * every Graph request would fetch a new token. A token that is really shorter-lived gets a 401 from Graph, which
 * renews it once. A huge `expires_in` is cut to the maximum.
 */
const MIN_TOKEN_LIFETIME_MS = 5 * MINUTE;
const MAX_TOKEN_LIFETIME_MS = 24 * HOUR;

/**
 * Token requests made before the previous token was due for renewal (it was dropped: Graph refused it with a 401,
 * again and again) back off: the first goes at once (a revoked token), the next after 1 s, then 2 s, 4 s … up to
 * this. A renewal on schedule resets the backoff.
 */
const TOKEN_BACKOFF_CAP_MS = 60 * SECOND;

/** How long to cache a token whose response said `expiresIn` (seconds, as sent), within the bounds above. */
function cacheLifetimeMs(expiresIn: unknown): { ms: number; clamped: boolean } {
  const seconds = typeof expiresIn === "number" ? expiresIn : typeof expiresIn === "string" ? Number(expiresIn) : NaN;
  const ms = seconds * 1000;
  if (!Number.isFinite(ms) || ms < MIN_TOKEN_LIFETIME_MS) {
    return { ms: MIN_TOKEN_LIFETIME_MS, clamped: true };
  }
  if (ms > MAX_TOKEN_LIFETIME_MS) {
    return { ms: MAX_TOKEN_LIFETIME_MS, clamped: true };
  }
  return { ms, clamped: false };
}

/** The wait before token request number `streak` of a run of early ones (1-based; the first goes at once). */
function tokenBackoffMs(streak: number): number {
  return streak <= 1 ? 0 : Math.min(TOKEN_BACKOFF_CAP_MS, SECOND * 2 ** (streak - 2));
}

// AADSTS codes that mean "your configuration is wrong", with the fix to print.
const CREDENTIAL_FIXES: Record<string, string> = {
  "7000215": "the client secret is wrong: copy the secret's Value (not its ID) into AZURE_CLIENT_SECRET",
  "7000222": "the client secret has expired: create a new one and update AZURE_CLIENT_SECRET",
  "700016": "no application with this AZURE_CLIENT_ID exists in the tenant: check the client ID and tenant",
  "90002": "the tenant was not found: check AZURE_TENANT_ID",
  "900023": "AZURE_TENANT_ID is not a valid tenant ID or domain",
  "70011": "the scope is invalid: check GRAPH_ENDPOINT",
  "7000112": "the application is disabled in the tenant",
};

interface TokenBody {
  access_token?: unknown;
  expires_in?: unknown;
  error?: unknown;
  error_description?: unknown;
  error_codes?: unknown;
}

function parseBody(response: HttpResponse): TokenBody {
  try {
    return JSON.parse(response.text) as TokenBody;
  } catch {
    return {};
  }
}

/** OAuth2 client credentials (secret, certificate assertion or federated token) against the v2.0 token endpoint. */
export class ClientCredentialsTokenProvider implements TokenProvider {
  readonly #credentials: ClientCredentials;
  readonly #dispatcher: Dispatcher;
  readonly #settings: HttpSettings;
  readonly #clock: GraphClock;
  readonly #log: Logger;
  readonly #observer: HttpObserver;
  readonly #onRenewal: (() => void) | undefined;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  #token: { value: string; renewAt: number } | undefined;
  #inFlight: Promise<string> | undefined;
  /** When the latest token was due for renewal, and how many requests in a row came before that. */
  #lastRenewAt: number | undefined;
  #earlyStreak = 0;
  /** How many tokens were fetched (for logs and tests). */
  renewals = 0;

  constructor(
    credentials: ClientCredentials,
    deps: {
      dispatcher: Dispatcher;
      settings: HttpSettings;
      clock: GraphClock;
      log: Logger;
      observer: HttpObserver;
      onRenewal?: () => void;
      /** Time and waiting, injectable for tests (default: the host clock and a real sleep). */
      now?: () => number;
      sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
    },
  ) {
    this.#now = deps.now ?? Date.now;
    this.#sleep = deps.sleep ?? sleep;
    this.#credentials = credentials;
    this.#dispatcher = deps.dispatcher;
    this.#settings = deps.settings;
    this.#clock = deps.clock;
    this.#log = deps.log;
    this.#observer = deps.observer;
    this.#onRenewal = deps.onRenewal;
  }

  invalidate(): void {
    this.#token = undefined;
  }

  getToken(signal: AbortSignal): Promise<string> {
    if (this.#token && this.#now() < this.#token.renewAt) {
      return Promise.resolve(this.#token.value);
    }
    this.#inFlight ??= this.#fetch(signal).finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  /** Spaces out token requests made while the previous token should still have been good (see TOKEN_BACKOFF_CAP_MS). */
  async #backOff(signal: AbortSignal): Promise<void> {
    const early = this.#lastRenewAt !== undefined && this.#now() < this.#lastRenewAt;
    this.#earlyStreak = early ? this.#earlyStreak + 1 : 0;
    const delay = tokenBackoffMs(this.#earlyStreak);
    if (delay > 0) {
      this.#log.warn(
        { retryInMs: delay, requestsInARow: this.#earlyStreak + 1 },
        "token requested again before the last one was due for renewal (Graph refuses the tokens?); backing off",
      );
      await this.#sleep(delay, signal);
    }
  }

  async #fetch(signal: AbortSignal): Promise<string> {
    await this.#backOff(signal);
    const { authorityHost, tenantId, clientId, scope } = this.#credentials;
    const url = `${authorityHost}/${encodeURIComponent(tenantId)}/oauth2/v2.0/token`;
    const form = new URLSearchParams({
      grant_type: "client_credentials",
      client_id: clientId,
      ...(await this.#credentials.fields(url, this.#clock.now())),
      scope,
    });
    const response = await sendWithRetries(
      this.#dispatcher,
      () => url,
      () => ({
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
        body: form.toString(),
        signal,
      }),
      (res) => {
        this.#clock.observe(res.headers["date"]);
        if (res.status === 429 || res.status >= 500) {
          return {
            done: false,
            reason: `token endpoint HTTP ${res.status}`,
            retryAfterMs: retryAfterOf(res, res.receivedAt),
          };
        }
        return { done: true };
      },
      {
        settings: this.#settings,
        clock: this.#clock,
        log: this.#log,
        what: "token request",
        endpoint: "token",
        observer: this.#observer,
      },
    );
    const body = parseBody(response);
    if (response.status !== 200 || typeof body.access_token !== "string") {
      throw credentialError(response.status, body, tenantId, clientId);
    }
    registerSecret(body.access_token, { ephemeral: true });
    const lifetime = cacheLifetimeMs(body.expires_in);
    if (lifetime.clamped) {
      this.#log.warn(
        { expiresIn: redact(String(body.expires_in)).slice(0, 40), cachedForS: lifetime.ms / 1000 },
        "the token endpoint gave an implausible expires_in; the token is cached for a bounded time instead",
      );
    }
    const margin = Math.min(RENEW_MARGIN_MS, lifetime.ms / 2);
    this.#token = { value: body.access_token, renewAt: this.#now() + lifetime.ms - margin };
    this.#lastRenewAt = this.#token.renewAt;
    this.renewals++;
    this.#onRenewal?.();
    this.#log.debug({ expiresInS: lifetime.ms / 1000, renewals: this.renewals }, "access token obtained");
    return body.access_token;
  }
}

// The endpoint's own words go into the message (they name the problem), but never verbatim: a hostile or broken
// endpoint may echo the request form, secret included.
function credentialError(status: number, body: TokenBody, tenantId: string, clientId: string): CredentialError {
  const description =
    typeof body.error_description === "string"
      ? redact(body.error_description.split(/\r?\n/)[0] ?? "").slice(0, 500)
      : "";
  const aadsts = /AADSTS(\d+)/.exec(description)?.[1];
  const code = typeof body.error === "string" ? redact(body.error).slice(0, 100) : `HTTP ${status}`;
  const fix = aadsts !== undefined ? CREDENTIAL_FIXES[aadsts] : undefined;
  return new CredentialError(
    `token request for tenant ${tenantId}, client ${clientId} was refused: ${code}` +
      (description ? ` (${description})` : ""),
    aadsts !== undefined ? `AADSTS${aadsts}` : code,
    fix ? { fix } : {},
  );
}

/** Managed identity (Azure Container Apps, App Service, VMs) through @azure/identity, with the same caching. */
export class ManagedIdentityTokenProvider implements TokenProvider {
  readonly #scope: string;
  readonly #clientId: string | undefined;
  readonly #onRenewal: (() => void) | undefined;
  #credential:
    Promise<{ getToken(scope: string, options?: { abortSignal?: AbortSignal }): Promise<unknown> }> | undefined;
  #token: { value: string; renewAt: number } | undefined;
  renewals = 0;

  constructor(options: { scope: string; clientId: string | undefined; onRenewal?: () => void }) {
    this.#scope = options.scope;
    this.#clientId = options.clientId;
    this.#onRenewal = options.onRenewal;
  }

  invalidate(): void {
    this.#token = undefined;
  }

  async getToken(signal: AbortSignal): Promise<string> {
    if (this.#token && Date.now() < this.#token.renewAt) {
      return this.#token.value;
    }
    this.#credential ??= import("@azure/identity").then(
      ({ ManagedIdentityCredential }) =>
        new ManagedIdentityCredential(this.#clientId ? { clientId: this.#clientId } : {}),
    );
    const credential = await this.#credential;
    let token: { token: string; expiresOnTimestamp: number } | null;
    try {
      token = (await credential.getToken(this.#scope, { abortSignal: signal })) as typeof token;
    } catch (error) {
      throw new CredentialError(
        `managed identity token request failed: ${redact((error as Error).message)}`,
        "managed_identity",
        {
          cause: error,
          fix: "assign a managed identity to this resource and grant its service principal AuditLog.Read.All",
        },
      );
    }
    if (!token) {
      throw new CredentialError("managed identity returned no token", "managed_identity");
    }
    registerSecret(token.token, { ephemeral: true });
    const lifetime = cacheLifetimeMs((token.expiresOnTimestamp - Date.now()) / 1000).ms;
    this.#token = { value: token.token, renewAt: Date.now() + lifetime - Math.min(RENEW_MARGIN_MS, lifetime / 2) };
    this.renewals++;
    this.#onRenewal?.();
    return token.token;
  }
}
