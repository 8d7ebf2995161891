// One PostgreSQL session-level advisory lock per (tenant, stream), held on a dedicated connection outside the
// pool, so that two replicas never poll the same stream. A lock lives as long as its session: when the holder
// dies, PostgreSQL releases it and a standby takes it on its next tick.

import pg from "pg";

import type { Logger } from "../log.ts";

export const TRY_LOCK = `select pg_try_advisory_lock(hashtextextended('signin-ingest/' || $1 || '/' || $2, 0)) as locked`;
// Each replica keeps exactly one connection with this application_name, so counting them counts live replicas.
export const LOCK_APPLICATION_NAME = "signin-ingest-locks";
export const LIVE_REPLICAS = `
select count(*)::int as replicas from pg_stat_activity
where application_name = '${LOCK_APPLICATION_NAME}' and datname = current_database()`;

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
        application_name: LOCK_APPLICATION_NAME,
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

  /**
   * Shares the targets fairly between live replicas: this replica keeps at most ceil(targets / replicas) locks,
   * releases extras (so a newly started replica can take them on its next tick) and tries to take free ones up to
   * its share. Returns the targets this replica should poll now.
   */
  async rebalance<T extends { tenant: { tenantId: string }; stream: { name: string } }>(
    targets: readonly T[],
  ): Promise<T[]> {
    const client = await this.#connection();
    const replicas = Math.max(1, (await client.query<{ replicas: number }>(LIVE_REPLICAS)).rows[0]?.replicas ?? 1);
    const share = Math.ceil(targets.length / replicas);
    const keyOf = (t: T) => `${t.tenant.tenantId}/${t.stream.name}`;
    const held = targets.filter((t) => this.#held.has(keyOf(t)));
    for (const extra of held.slice(share)) {
      await this.release(extra.tenant.tenantId, extra.stream.name);
      this.#log.info(
        { tenant_id: extra.tenant.tenantId, stream: extra.stream.name, replicas },
        "lock handed over to another replica",
      );
    }
    const mine = held.slice(0, share);
    // Start at a different place in the list on each replica, so replicas do not all contend for the same locks.
    const offset = targets.length === 0 ? 0 : process.pid % targets.length;
    for (let i = 0; i < targets.length && mine.length < share; i++) {
      const target = targets[(i + offset) % targets.length] as T;
      if (!mine.includes(target) && (await this.tryAcquire(target.tenant.tenantId, target.stream.name))) {
        mine.push(target);
      }
    }
    return mine;
  }

  /** Ends the session, which releases every lock. */
  async close(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    this.#held.clear();
    await client?.end().catch(() => undefined);
  }
}
