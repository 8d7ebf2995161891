// Bytes of Graph pages held in this process (fetched, being checked or stored), across every window, slice, stream
// and tenant: a fetched page is parsed and held only once its bytes fit the budget, so memory stays bounded whatever
// the catch-up width, TENANT_CONCURRENCY or page size (a page larger than the whole budget is taken alone). Fetches
// themselves never wait for it: a tenant whose Graph is slow or hangs holds no budget meanwhile. A fetched page that
// waits for the budget is held as its bytes (src/events/jsonb.ts), so the number of backfill slices (each with a page
// fetched ahead) is bounded by the same bytes (sliceSlot).

export interface PageGrant {
  /** Gives the bytes back (idempotent). */
  release(): void;
}

export class PageBudget {
  readonly limit: number;
  #used = 0;
  /**
   * The most bytes per event seen lately in a page (each page observed lets it decay by 5 %): times the page size,
   * what one more full page is expected to cost.
   */
  #bytesPerEvent = 0;
  /** Concurrent slices holding a slot (sliceSlot). */
  #slices = 0;
  readonly #waiters: Array<{ bytes: number; wake: () => void }> = [];

  /** `limit`: PAGE_MEMORY_BYTES (src/app.ts builds one budget per process). */
  constructor(limit: number) {
    this.limit = limit;
  }

  get used(): number {
    return this.#used;
  }

  /** Slices holding a slot, across every backfill and catch-up of the process. */
  get slices(): number {
    return this.#slices;
  }

  /**
   * A slot for one more slice of a backfill or catch-up (src/ingest/backfill.ts), or undefined when the slices
   * already running would no longer fit: each holds up to two pages (one being stored, the next fetched ahead), and
   * a page that waits for this budget is already in memory as its bytes, so the number of slices, not only the pages
   * admitted, must be bounded by bytes. A slot is granted while (slices + 1) × 2 full pages (`pageSize` events at the
   * bytes per event observed) fit the limit; before any page was observed only one slice runs. `force` grants it
   * anyway (each backfill runs at least one slice, whatever the others hold). Realistic pages (999 sign-ins, ~8 MB)
   * and the default 32 MiB (PAGE_MEMORY_BYTES): two slices, each fetching its next page while it stores one.
   */
  sliceSlot(pageSize: number, force = false): PageGrant | undefined {
    const fits = this.#bytesPerEvent > 0 && (this.#slices + 1) * 2 * this.#pageBytes(pageSize) <= this.limit;
    if (!fits && !force) {
      return undefined;
    }
    this.#slices++;
    let held = true;
    return {
      release: () => {
        if (held) {
          held = false;
          this.#slices--;
        }
      },
    };
  }

  /**
   * How many slices of full pages the whole budget holds (at least 1; 1 before any page was observed): how many
   * workers a backfill should cut its last stretch for (src/ingest/slice-queue.ts), since more slices than that
   * would not run at once and would only cost Graph requests for partly filled pages.
   */
  slicesThatFit(pageSize: number): number {
    return this.#bytesPerEvent > 0 ? Math.max(1, Math.floor(this.limit / (2 * this.#pageBytes(pageSize)))) : 1;
  }

  #pageBytes(pageSize: number): number {
    return pageSize * this.#bytesPerEvent;
  }

  /** Records a page's size and event count (the reader, once the page is parsed), for sliceSlot's estimate. */
  observe(bytes: number, events: number): void {
    if (events > 0) {
      this.#bytesPerEvent = Math.max(bytes / events, this.#bytesPerEvent * 0.95);
    }
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
