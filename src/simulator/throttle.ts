// Sliding-window request limits, like Graph's identity-reports throttling.
export interface ThrottleRule {
  perTenant: number;
  perApp: number;
  windowMs: number;
  /** Include Retry-After on 429 (default true). */
  retryAfter?: boolean;
}

export class Throttle {
  private readonly hits = new Map<string, number[]>();
  private readonly rule: ThrottleRule;
  private readonly windowMs: number;

  constructor(rule: ThrottleRule, timeScale: number) {
    this.rule = rule;
    this.windowMs = rule.windowMs / Math.max(timeScale, 1e-9);
  }

  private recent(key: string, nowMs: number): number[] {
    const list = (this.hits.get(key) ?? []).filter((t) => t > nowMs - this.windowMs);
    this.hits.set(key, list);
    return list;
  }

  /** Counts the request if allowed; otherwise returns the wait in ms before it would be. */
  admit(clientId: string, tenantId: string, nowMs: number): { ok: true } | { ok: false; waitMs: number } {
    const tenantKey = `${clientId}|${tenantId}`;
    const appKey = clientId;
    const t = this.recent(tenantKey, nowMs);
    const a = this.recent(appKey, nowMs);
    let waitMs = 0;
    if (t.length >= this.rule.perTenant) {
      waitMs = Math.max(waitMs, (t[t.length - this.rule.perTenant] ?? nowMs) + this.windowMs - nowMs);
    }
    if (a.length >= this.rule.perApp) {
      waitMs = Math.max(waitMs, (a[a.length - this.rule.perApp] ?? nowMs) + this.windowMs - nowMs);
    }
    if (waitMs > 0) {
      return { ok: false, waitMs };
    }
    t.push(nowMs);
    a.push(nowMs);
    return { ok: true };
  }
}
