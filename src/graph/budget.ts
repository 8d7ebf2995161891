// Graph's throttle budget for reporting APIs: 5 requests per 10 s per app per tenant, and 122 per 10 s per app
// across tenants. Every request (retries too) takes a slot from both windows first, so the daemon stays under the
// limits instead of learning them from 429s. Backfill may use all but `reserve` slots of a tenant's window, so the
// five-minute tail always finds room.

import { sleep } from "../time.ts";

export interface BudgetLimits {
  perTenant: number;
  perApp: number;
  windowMs: number;
  /** Slots per tenant window that low-priority work (backfill) leaves for the tail. */
  reserve: number;
}

const GRAPH_REPORTING_LIMITS: BudgetLimits = { perTenant: 5, perApp: 122, windowMs: 10_000, reserve: 1 };

export type Priority = "tail" | "backfill";

export type PenaltyListener = (tenantId: string, untilMs: number) => void;

/** A sliding-window log per key: the start times of requests in the last `windowMs`. */
class Window {
  readonly starts: number[] = [];
  blockedUntil = 0;

  prune(now: number, windowMs: number): void {
    while (this.starts.length > 0 && (this.starts[0] ?? 0) <= now - windowMs) {
      this.starts.shift();
    }
  }

  /** Milliseconds until a slot frees up when at most `limit` may be in the window (0 = now). */
  waitFor(now: number, windowMs: number, limit: number): number {
    this.prune(now, windowMs);
    const blocked = Math.max(0, this.blockedUntil - now);
    if (this.starts.length < limit) {
      return blocked;
    }
    const oldestThatMustExpire = this.starts[this.starts.length - limit] ?? now;
    return Math.max(blocked, oldestThatMustExpire + windowMs - now);
  }
}

export class GraphBudget {
  readonly limits: BudgetLimits;
  readonly #now: () => number;
  readonly #tenants = new Map<string, Window>();
  readonly #apps = new Map<string, Window>();
  readonly #penaltyListeners = new Set<PenaltyListener>();
  /** Requests granted, for budget-utilisation figures. */
  granted = 0;

  constructor(limits: BudgetLimits = GRAPH_REPORTING_LIMITS, now: () => number = Date.now) {
    this.limits = limits;
    this.#now = now;
  }

  #window(map: Map<string, Window>, key: string): Window {
    let window = map.get(key);
    if (!window) {
      window = new Window();
      map.set(key, window);
    }
    return window;
  }

  /** How long a request would have to wait now (0 = it may go). */
  delayFor(tenantId: string, appId: string, priority: Priority = "tail"): number {
    const now = this.#now();
    const { perTenant, perApp, windowMs, reserve } = this.limits;
    const tenantLimit = priority === "backfill" ? Math.max(1, perTenant - reserve) : perTenant;
    return Math.max(
      this.#window(this.#tenants, tenantId).waitFor(now, windowMs, tenantLimit),
      this.#window(this.#apps, appId).waitFor(now, windowMs, perApp),
    );
  }

  /** Requests waiting for a slot now, and the time requests have waited for one in all (progress displays). */
  waiting = 0;
  waitedMs = 0;

  /** Waits for a slot in both windows, then records the request. */
  async take(tenantId: string, appId: string, signal: AbortSignal, priority: Priority = "tail"): Promise<void> {
    let waited = false;
    try {
      for (;;) {
        const delay = this.delayFor(tenantId, appId, priority);
        if (delay === 0) {
          const now = this.#now();
          this.#window(this.#tenants, tenantId).starts.push(now);
          this.#window(this.#apps, appId).starts.push(now);
          this.granted++;
          return;
        }
        if (!waited) {
          waited = true;
          this.waiting++;
        }
        await sleep(delay, signal);
        this.waitedMs += delay;
      }
    } finally {
      if (waited) {
        this.waiting--;
      }
    }
  }

  /** After a 429: nobody sends for this tenant until Graph's Retry-After has passed. Tells the penalty listeners. */
  penalize(tenantId: string, untilMs: number): void {
    const window = this.#window(this.#tenants, tenantId);
    window.blockedUntil = Math.max(window.blockedUntil, untilMs);
    for (const listener of this.#penaltyListeners) {
      listener(tenantId, untilMs);
    }
  }

  /**
   * Calls `listener` after every penalty (a 429 from Graph, any tenant of this budget), until the returned function
   * is called. Backfill lowers its concurrency with it.
   */
  onPenalty(listener: PenaltyListener): () => void {
    this.#penaltyListeners.add(listener);
    return () => {
      this.#penaltyListeners.delete(listener);
    };
  }
}
