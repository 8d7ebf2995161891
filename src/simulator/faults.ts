// Scripted faults: which request gets which misbehaviour.
import type { Rng } from "./random.ts";

export interface FaultMatch {
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
  );
export type FaultKind = FaultRule["kind"];

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
