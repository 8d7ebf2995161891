// The Entra ID token endpoint (client credentials) and bearer-token checks.
import { constants, createHash, randomBytes, verify, X509Certificate } from "node:crypto";
import { aadErrorBody, AAD_JSON, send } from "./http.ts";
import type { Ctx } from "./http.ts";

export interface TokenInfo {
  tenantId: string;
  clientId: string;
  issuedAtMs: number;
  expiresAtMs: number;
  seq: number;
  assertion: boolean;
}

export type TokenCheck = { ok: true; info: TokenInfo } | { ok: false; message: string };

const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** Client credentials other than secrets: certificates (PEM) and federated tokens accepted, per client id. */
export interface AssertionCredentials {
  certificates?: Record<string, string>;
  federatedTokens?: Record<string, string[]>;
}

/** Why a certificate client assertion is refused (as Entra ID checks it), or undefined when it is valid. */
function certificateAssertionProblem(
  assertion: string,
  certPem: string,
  clientId: string,
  audience: string,
  nowMs: number,
): string | undefined {
  const [h, p, sig] = assertion.split(".");
  if (!h || !p || !sig) {
    return "The client assertion is not a JWT.";
  }
  let header: Record<string, unknown>;
  let payload: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(h, "base64url").toString("utf8")) as Record<string, unknown>;
    payload = JSON.parse(Buffer.from(p, "base64url").toString("utf8")) as Record<string, unknown>;
  } catch {
    return "The client assertion is not a JWT.";
  }
  const cert = new X509Certificate(certPem);
  const thumb = createHash("sha256").update(cert.raw).digest("base64url");
  if (header.alg !== "PS256") {
    return `Client assertion uses an unsupported algorithm ${String(header.alg)}.`;
  }
  if (header["x5t#S256"] !== thumb) {
    return "The certificate with identifier used to sign the client assertion is not registered on application.";
  }
  const valid = verify(
    "sha256",
    Buffer.from(`${h}.${p}`),
    {
      key: cert.publicKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
    },
    Buffer.from(sig, "base64url"),
  );
  if (!valid) {
    return "Client assertion contains an invalid signature.";
  }
  if (payload.aud !== audience) {
    return `The audience claim value is invalid '${String(payload.aud)}'.`;
  }
  if (payload.iss !== clientId || payload.sub !== clientId) {
    return "The issuer and subject of the client assertion must be the client id.";
  }
  const exp = Number(payload.exp) * 1000;
  if (!(exp > nowMs) || exp - nowMs > 60 * 60_000) {
    return "The client assertion is expired or too long-lived.";
  }
  return undefined;
}

export class TokenAuthority {
  private readonly tokens = new Map<string, TokenInfo>();
  private seq = 0;
  private revokedUpTo = 0;
  readonly assertions: Array<{ tenantId: string; clientId: string; assertion: string }> = [];
  private readonly tenants: string[];
  private readonly clients: Record<string, string>;
  private readonly lifetimeSec: number;

  private readonly credentials: AssertionCredentials;

  constructor(
    tenants: string[],
    clients: Record<string, string>,
    lifetimeSec: number,
    credentials: AssertionCredentials = {},
  ) {
    this.tenants = tenants;
    this.clients = clients;
    this.lifetimeSec = lifetimeSec;
    this.credentials = credentials;
  }

  /** Handles POST /{tenant}/oauth2/v2.0/token. Returns the tenant it authenticated for, if any. */
  issue(ctx: Ctx, tenant: string, body: string): string | undefined {
    const fail = (status: number, error: string, code: number, text: string): undefined => {
      send(ctx, status, aadErrorBody(ctx, error, code, text), {
        "Content-Type": AAD_JSON,
        Date: ctx.now.toUTCString(),
        "Cache-Control": "no-store, no-cache",
      });
      return undefined;
    };
    const tenantId = this.tenants.find((t) => t.toLowerCase() === tenant.toLowerCase());
    if (!tenantId) {
      return fail(
        400,
        "invalid_request",
        90002,
        `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`,
      );
    }
    const form = new URLSearchParams(body);
    let clientId = form.get("client_id") ?? undefined;
    let secret = form.get("client_secret") ?? undefined;
    const basic = ctx.req.headers.authorization;
    if (basic?.startsWith("Basic ")) {
      const [id, pw] = Buffer.from(basic.slice(6), "base64").toString("utf8").split(":");
      clientId ??= id ? decodeURIComponent(id) : undefined;
      secret ??= pw !== undefined ? decodeURIComponent(pw) : undefined;
    }
    const grant = form.get("grant_type");
    if (!grant) {
      return fail(
        400,
        "invalid_request",
        900144,
        "The request body must contain the following parameter: 'grant_type'.",
      );
    }
    if (grant !== "client_credentials") {
      return fail(400, "unsupported_grant_type", 70003, `The app requested an unsupported grant type '${grant}'.`);
    }
    if (!clientId) {
      return fail(
        400,
        "invalid_request",
        900144,
        "The request body must contain the following parameter: 'client_id'.",
      );
    }
    const known = Object.keys(this.clients).find((c) => c.toLowerCase() === clientId.toLowerCase());
    if (known === undefined) {
      return fail(
        400,
        "unauthorized_client",
        700016,
        `Application with identifier '${clientId}' was not found in the directory '${tenantId}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
      );
    }
    const scope = form.get("scope");
    if (!scope) {
      return fail(400, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'.");
    }
    if (!scope.endsWith("/.default") || scope.trim().includes(" ")) {
      return fail(
        400,
        "invalid_scope",
        70011,
        `The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope ${scope} is not valid.`,
      );
    }
    const assertion = form.get("client_assertion");
    if (assertion !== null) {
      if (form.get("client_assertion_type") !== ASSERTION_TYPE) {
        return fail(
          400,
          "invalid_request",
          90014,
          "The request body must contain a valid 'client_assertion_type' parameter.",
        );
      }
      this.assertions.push({ tenantId, clientId: known, assertion });
      const cert = this.credentials.certificates?.[known];
      const federated = this.credentials.federatedTokens?.[known];
      if (cert !== undefined) {
        const audience = `http://${ctx.req.headers.host ?? ""}${(ctx.req.url ?? "").split("?")[0] ?? ""}`;
        const problem = certificateAssertionProblem(assertion, cert, known, audience, ctx.now.getTime());
        if (problem) {
          return fail(401, "invalid_client", 700027, problem);
        }
      } else if (federated !== undefined && !federated.includes(assertion)) {
        return fail(
          400,
          "invalid_request",
          700213,
          `No matching federated identity record found for presented assertion subject. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.`,
        );
      }
    } else if (secret === undefined) {
      return fail(
        401,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
      );
    } else if (secret !== this.clients[known]) {
      return fail(
        401,
        "invalid_client",
        7000215,
        `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${known}'.`,
      );
    }
    const token = `sim.${randomBytes(36).toString("base64url")}`;
    const nowMs = ctx.now.getTime();
    this.tokens.set(token, {
      tenantId,
      clientId: known,
      issuedAtMs: nowMs,
      expiresAtMs: nowMs + this.lifetimeSec * 1000,
      seq: ++this.seq,
      assertion: assertion !== null,
    });
    send(
      ctx,
      200,
      JSON.stringify({
        token_type: "Bearer",
        expires_in: this.lifetimeSec,
        ext_expires_in: this.lifetimeSec,
        access_token: token,
      }),
      {
        "Content-Type": AAD_JSON,
        Date: ctx.now.toUTCString(),
        "Cache-Control": "no-store, no-cache",
      },
    );
    return tenantId;
  }

  check(header: string | undefined, nowMs: number): TokenCheck {
    if (!header || !/^bearer\s+\S/i.test(header)) {
      return { ok: false, message: "Access token is empty." };
    }
    const info = this.tokens.get(header.replace(/^bearer\s+/i, "").trim());
    if (!info) {
      return { ok: false, message: "IDX14100: JWT is not well formed, there are no dots (.)." };
    }
    if (info.seq <= this.revokedUpTo || info.expiresAtMs <= nowMs) {
      return { ok: false, message: "Lifetime validation failed, the token is expired." };
    }
    return { ok: true, info };
  }

  /** Every access token issued so far (tests search logs for them). */
  issued(): string[] {
    return [...this.tokens.keys()];
  }

  /** Makes every token issued so far invalid (expire-token fault). */
  revokeAll(): void {
    this.revokedUpTo = this.seq;
  }
}
