// Scripted faults: which request gets which misbehaviour.
import type { Rng } from "./random.ts";

interface FaultMatch {
  /** Substring of the request path. */
  path?: string;
  /** The nth Graph request (or nth token request when `token` is true), 1-based. */
  requestNumber?: number;
  /** Inclusive range of request numbers. */
  from?: number;
  to?: number;
  /** Chance (seeded) that a matching request is hit. */
  probability?: number;
  /** true: applies to the token endpoint instead of Graph requests. */
  token?: boolean;
}
interface FaultBase {
  match?: FaultMatch;
  /** Maximum number of times the rule fires (default unlimited). */
  times?: number;
}
export type FaultRule = FaultBase &
  (
    | { kind: "status"; status: number; retryAfter?: string; body?: string; contentType?: string }
    | { kind: "reset"; afterBytes?: number }
    | { kind: "hang"; ms?: number }
    | { kind: "truncate" }
    | { kind: "malformed" }
    | { kind: "no-value" }
    | { kind: "html"; status?: number }
    | { kind: "foreign-next-link"; host: string }
    | { kind: "expire-token" }
    // Hostile or broken peers (issue 12): each replaces one thing in an otherwise normal exchange.
    /** The response's Date header says `date` (e.g. "Mon, 01 Jan 2001 00:00:00 GMT"); Graph or token endpoint. */
    | { kind: "date"; date: string }
    /** Token endpoint: the token is issued, but the response says `expires_in: expiresIn` (null: no expires_in). */
    | { kind: "token-lifetime"; expiresIn: unknown }
    /** Graph: a 200 page of `bytes` (default 60 MB) of tiny items `[1,1,1,…]`, streamed without Content-Length. */
    | { kind: "oversized"; bytes?: number; contentLength?: boolean }
    /** Graph: the normal page with bytes 0xFF 0xFE (never valid UTF-8) inside its first event's text. */
    | { kind: "invalid-utf8" }
    /**
     * An error that echoes the request: the token endpoint puts the whole form (client secret or assertion) into
     * error_description, Graph puts the Authorization header into its error message. Status default 401 / 400.
     */
    | { kind: "echo"; status?: number }
  );

const KINDS = new Set<string>([
  "status",
  "reset",
  "hang",
  "truncate",
  "malformed",
  "no-value",
  "html",
  "foreign-next-link",
  "expire-token",
  "date",
  "token-lifetime",
  "oversized",
  "invalid-utf8",
  "echo",
]);

/** Validates rules received as JSON (admin endpoint). Throws on nonsense. */
export function validateRules(input: unknown): FaultRule[] {
  if (!Array.isArray(input)) {
    throw new Error("rules must be an array");
  }
  for (const r of input) {
    if (!r || typeof r !== "object" || !KINDS.has(String((r as { kind?: unknown }).kind))) {
      throw new Error(`invalid fault rule: ${JSON.stringify(r)}`);
    }
    const rule = r as FaultRule;
    if (rule.kind === "status" && typeof rule.status !== "number") {
      throw new Error("status rule needs a numeric status");
    }
    if (rule.kind === "foreign-next-link" && typeof rule.host !== "string") {
      throw new Error("foreign-next-link needs host");
    }
    if (rule.kind === "date" && typeof rule.date !== "string") {
      throw new Error("date rule needs a date string (the Date header to send)");
    }
    if (rule.kind === "token-lifetime" && !("expiresIn" in rule)) {
      throw new Error("token-lifetime rule needs expiresIn (a number, a string, or null for none)");
    }
    if (rule.kind === "oversized" && rule.bytes !== undefined && !(Number.isInteger(rule.bytes) && rule.bytes > 0)) {
      throw new Error("oversized rule needs a positive integer bytes");
    }
  }
  return input as FaultRule[];
}

export class FaultScript {
  private rules: FaultRule[] = [];
  private fired: number[] = [];
  private readonly rng: Rng;

  constructor(rng: Rng, rules: FaultRule[] = []) {
    this.rng = rng;
    this.set(rules);
  }

  set(rules: FaultRule[]): void {
    this.rules = [...rules];
    this.fired = rules.map(() => 0);
  }

  /** First rule that fires for this request (and counts it), if any. */
  pick(isToken: boolean, n: number, path: string): FaultRule | undefined {
    for (let i = 0; i < this.rules.length; i++) {
      const rule = this.rules[i] as FaultRule;
      const m = rule.match ?? {};
      if ((m.token === true) !== isToken) {
        continue;
      }
      if (rule.times !== undefined && (this.fired[i] ?? 0) >= rule.times) {
        continue;
      }
      if (m.path !== undefined && !path.includes(m.path)) {
        continue;
      }
      if (m.requestNumber !== undefined && m.requestNumber !== n) {
        continue;
      }
      if (m.from !== undefined && n < m.from) {
        continue;
      }
      if (m.to !== undefined && n > m.to) {
        continue;
      }
      if (m.probability !== undefined && !(this.rng() < m.probability)) {
        continue;
      }
      this.fired[i] = (this.fired[i] ?? 0) + 1;
      return rule;
    }
    return undefined;
  }
}
