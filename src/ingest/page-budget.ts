// Bytes of Graph pages in flight in this process (fetched or being fetched, not yet stored), across every window,
// slice, stream and tenant: a page is fetched only when its expected size fits the budget, so memory stays bounded
// whatever the catch-up width, TENANT_CONCURRENCY or page size (a page larger than the whole budget is fetched alone).

/** The default budget: two real-sized pages of 999 events (~8 MB of JSON each) at once. */
export const PAGE_BYTES_IN_FLIGHT = 16 * 1024 * 1024;

/** Expected bytes of an event before any page was seen (real beta sign-ins are ~8 KB). */
const FIRST_BYTES_PER_EVENT = 8 * 1024;

export interface PageGrant {
  /** Replaces the reservation by the page's actual size once it is known. */
  resize(bytes: number): void;
  /** Gives the bytes back (idempotent). */
  release(): void;
}

export class PageBudget {
  readonly limit: number;
  #used = 0;
  #bytesPerEvent = FIRST_BYTES_PER_EVENT;
  readonly #waiters: Array<{ bytes: number; wake: () => void }> = [];

  constructor(limit = PAGE_BYTES_IN_FLIGHT) {
    this.limit = limit;
  }

  get used(): number {
    return this.#used;
  }

  /** The reservation for a page of up to `events` events: the last page's bytes per event times that. */
  expected(events: number): number {
    return Math.min(this.limit, Math.max(1, events) * this.#bytesPerEvent);
  }

  /** Waits until `bytes` fit (or nothing else is in flight), first come first served; rejects if `signal` aborts. */
  async acquire(bytes: number, signal?: AbortSignal): Promise<PageGrant> {
    signal?.throwIfAborted();
    if (this.#fits(bytes) && this.#waiters.length === 0) {
      this.#used += bytes;
    } else {
      // #wake reserves the bytes before it resolves, so the next waiter is judged against them.
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          this.#wake();
          reject(signal?.reason as Error);
        };
        const waiter = {
          bytes,
          wake: () => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
          },
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        this.#waiters.push(waiter);
      });
    }
    let held = bytes;
    return {
      resize: (actual) => {
        this.#used += actual - held;
        held = actual;
        this.#wake();
      },
      release: () => {
        this.#used -= held;
        held = 0;
        this.#wake();
      },
    };
  }

  /** Learns the size of events from a page just read. */
  observe(bytes: number, events: number): void {
    if (events > 0) {
      this.#bytesPerEvent = Math.max(256, Math.ceil(bytes / events));
    }
  }

  #fits(bytes: number): boolean {
    return this.#used === 0 || this.#used + bytes <= this.limit;
  }

  #wake(): void {
    while (this.#waiters.length > 0 && this.#fits(this.#waiters[0]!.bytes)) {
      const waiter = this.#waiters.shift()!;
      this.#used += waiter.bytes;
      waiter.wake();
    }
  }
}

/** The process's budget, shared by every reader (src/ingest/reader.ts). */
export const pageBudget = new PageBudget();
