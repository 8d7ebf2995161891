// Bytes of Graph pages held in this process (fetched, being checked or stored), across every window, slice, stream
// and tenant: a fetched page is parsed and held only once its bytes fit the budget, so memory stays bounded whatever
// the catch-up width, TENANT_CONCURRENCY or page size (a page larger than the whole budget is taken alone). Fetches
// themselves never wait for it: a tenant whose Graph is slow or hangs holds no budget meanwhile.

/** The default budget: two real-sized pages of 999 events (~8 MB of JSON each). */
const PAGE_BYTES_IN_FLIGHT = 16 * 1024 * 1024;

export interface PageGrant {
  /** Gives the bytes back (idempotent). */
  release(): void;
}

export class PageBudget {
  readonly limit: number;
  #used = 0;
  readonly #waiters: Array<{ bytes: number; wake: () => void }> = [];

  constructor(limit = PAGE_BYTES_IN_FLIGHT) {
    this.limit = limit;
  }

  get used(): number {
    return this.#used;
  }

  /** Waits until `bytes` fit (or nothing else is held), first come first served; rejects if `signal` aborts. */
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
      release: () => {
        this.#used -= held;
        held = 0;
        this.#wake();
      },
    };
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
