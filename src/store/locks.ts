// One PostgreSQL session-level advisory lock per (tenant, stream), held on a dedicated connection outside the
// pool, so that two replicas never poll the same stream. A lock lives as long as its session: when the holder
// dies, PostgreSQL releases it and a standby takes it on its next tick.

import pg from "pg";

import type { Logger } from "../log.ts";

export const TRY_LOCK = `select pg_try_advisory_lock(hashtextextended('signin-ingest/' || $1 || '/' || $2, 0)) as locked`;
export const UNLOCK = `select pg_advisory_unlock(hashtextextended('signin-ingest/' || $1 || '/' || $2, 0))`;

export class StreamLocks {
  readonly #url: string;
  readonly #log: Logger;
  #client: pg.Client | undefined;
  #connecting: Promise<pg.Client> | undefined;
  readonly #held = new Set<string>();

  constructor(url: string, log: Logger) {
    this.#url = url;
    this.#log = log;
  }

  async #connection(): Promise<pg.Client> {
    if (this.#client) {
      return this.#client;
    }
    this.#connecting ??= (async () => {
      const client = new pg.Client({
        connectionString: this.#url,
        application_name: "signin-ingest-locks",
        keepAlive: true,
      });
      const lost = (reason: string) => {
        if (this.#client === client) {
          this.#client = undefined;
          if (this.#held.size > 0) {
            this.#log.warn(
              { reason, locks: [...this.#held] },
              "lock connection lost; locks released, re-acquiring next tick",
            );
          }
          this.#held.clear();
        }
      };
      client.on("error", (err) => lost(err.message));
      client.on("end", () => lost("connection ended"));
      await client.connect();
      this.#client = client;
      return client;
    })().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  /** True when this process holds (or just acquired) the lock of (tenant, stream). */
  async tryAcquire(tenantId: string, stream: string): Promise<boolean> {
    const key = `${tenantId}/${stream}`;
    const client = await this.#connection();
    if (this.#held.has(key)) {
      return true;
    }
    const result = await client.query<{ locked: boolean }>(TRY_LOCK, [tenantId, stream]);
    if (result.rows[0]?.locked) {
      this.#held.add(key);
      this.#log.info({ tenant_id: tenantId, stream }, "lock acquired: this replica polls the stream");
      return true;
    }
    return false;
  }

  async release(tenantId: string, stream: string): Promise<void> {
    const key = `${tenantId}/${stream}`;
    if (this.#held.delete(key) && this.#client) {
      await this.#client.query(UNLOCK, [tenantId, stream]);
    }
  }

  /** Ends the session, which releases every lock. */
  async close(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    this.#held.clear();
    await client?.end().catch(() => undefined);
  }
}
