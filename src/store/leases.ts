// Leases: which replica polls each (tenant, stream), so that two replicas never poll the same stream, and a standby
// takes over when the holder dies. Tables replicas and stream_leases (migration 0019), which only the daemon's role
// can write; every time is the database's now(), so replicas with different clocks agree.
//
// - Each process registers a row in `replicas` and heartbeats it every LEASE_HEARTBEAT; the same statement
//   extends its leases to now() + LEASE_TTL and returns them (a lease missing from the answer was taken over).
// - A lease is taken when free, expired, already ours, or its holder's heartbeat session no longer exists (one
//   INSERT … ON CONFLICT … WHERE): a killed holder's streams are taken at a standby's next tick (the server ends
//   the session), a holder cut off from the database (its session lingering) loses them after LEASE_TTL.
// - A replica that cannot renew (the database stopped answering) gives its leases up locally LEASE_TTL − one
//   heartbeat after its last successful renewal was sent, before any other replica can take them over: each
//   lease's signal aborts, and with it the cycle polling that stream and its queries.
// - `run` replicas share the pairs: each keeps at most ceil(pairs / live `run` replicas), hands extras back and
//   takes free ones up to its share. `once` and `backfill` take what is free and are not counted.

import { randomUUID } from "node:crypto";
import { hostname } from "node:os";

import pg from "pg";

import { TemporaryError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { connectionOptions, DEFAULT_TIMEOUTS } from "./db.ts";

export type ReplicaKind = "run" | "once" | "backfill";
const LEASE_APPLICATION_NAME = "signin-ingest-leases";

const MS = `* interval '1 millisecond'`;

/**
 * The replica's row is live while it heartbeats and the session it heartbeats on exists. backend_start tells a
 * reused pid apart; PostgreSQL hides it for another role's sessions (null), and a pid alone then keeps the lease
 * until it expires: slower to take over, never two holders.
 */
const LIVE = (r: string) => `(${r}.heartbeat_at > now() - $TTL::bigint ${MS} and exists (
  select 1 from pg_stat_activity a where a.pid = ${r}.backend_pid
    and (a.backend_start is null or a.backend_start = ${r}.backend_start)))`;

const HEARTBEAT = `
with beat as (
  insert into replicas (id, kind, host, pid, backend_pid, backend_start)
  select $1, $2, $3, $4, pid, backend_start from pg_stat_activity where pid = pg_backend_pid()
  on conflict (id) do update
    set heartbeat_at = now(), backend_pid = excluded.backend_pid, backend_start = excluded.backend_start
)
update stream_leases set expires_at = now() + $5::bigint ${MS}
where holder = $1
returning tenant_id, stream`;

const ACQUIRE = `
insert into stream_leases as l (tenant_id, stream, holder, acquired_at, expires_at)
values ($1, $2, $3, now(), now() + $4::bigint ${MS})
on conflict (tenant_id, stream) do update
  set holder = excluded.holder,
      acquired_at = case when l.holder = excluded.holder then l.acquired_at else now() end,
      expires_at = excluded.expires_at
  where l.holder = excluded.holder or l.expires_at <= now()
     or not exists (select 1 from replicas r where r.id = l.holder and ${LIVE("r").replaceAll("$TTL", "$4")})
returning holder`;

const RELEASE = `delete from stream_leases where tenant_id = $1 and stream = $2 and holder = $3`;
const UNREGISTER = `delete from replicas where id = $1`;
/** Replicas that have not heartbeated for ten lease lifetimes are gone (their leases go with them). */
const PRUNE = `delete from replicas where heartbeat_at < now() - 10 * $1::bigint ${MS}`;
const LIVE_RUN_REPLICAS = `
select count(*)::int as replicas from replicas r where kind = 'run' and ${LIVE("r").replaceAll("$TTL", "$1")}`;
const HOLDERS = `
select l.tenant_id, l.stream, l.holder, l.expires_at, r.kind, r.host, r.pid,
       l.expires_at > now() and coalesce(${LIVE("r").replaceAll("$TTL", "$1")}, false) as live
from stream_leases l left join replicas r on r.id = l.holder`;

/** Who holds a lease this replica wanted. */
export interface LeaseHolder {
  holder: string;
  kind: string | null;
  host: string | null;
  pid: number | null;
  expiresAt: Date;
  live: boolean;
}

/** The lease of this stream was lost (taken over, or not renewable in time): its cycle stops. */
export class LeaseLostError extends TemporaryError {
  override name = "LeaseLostError";
}

interface Target {
  tenant: { tenantId: string };
  stream: { name: string };
}

export interface Shared<T> {
  /** Targets this replica holds and should poll now. */
  mine: T[];
  /** Targets it does not poll, with the holder when another replica holds them (undefined: free, over our share). */
  skipped: Array<{ target: T; holder: LeaseHolder | undefined }>;
}

interface Held {
  controller: AbortController;
  /** performance.now() when it was acquired: a heartbeat sent before that cannot have renewed it. */
  acquiredAt: number;
}

export interface LeaseOptions {
  kind: ReplicaKind;
  ttlMs: number;
  heartbeatMs: number;
}

const keyOf = (tenantId: string, stream: string) => `${tenantId}/${stream}`;

export class StreamLeases {
  readonly id = randomUUID();
  readonly #pool: pg.Pool;
  readonly #log: Logger;
  readonly #options: LeaseOptions;
  readonly #held = new Map<string, Held>();
  #registered: Promise<void> | undefined;
  #beatTimer: NodeJS.Timeout | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;
  #failing = false;
  #closed = false;

  constructor(url: string, log: Logger, options: LeaseOptions) {
    this.#log = log;
    this.#options = options;
    // Its own small pool: heartbeats never queue behind the cycles' statements, and every lease statement is
    // bounded by one heartbeat interval (connection, server and client side).
    const bound = options.heartbeatMs;
    this.#pool = new pg.Pool({
      connectionString: url,
      application_name: LEASE_APPLICATION_NAME,
      // One connection: its session is the one `replicas.backend_pid` names.
      max: 1,
      idleTimeoutMillis: 0,
      ...connectionOptions({ ...DEFAULT_TIMEOUTS, statementTimeoutMs: bound, lockTimeoutMs: bound }),
      query_timeout: bound,
      connectionTimeoutMillis: bound,
    });
    this.#pool.on("error", (err) => log.debug({ err }, "idle lease connection failed"));
  }

  /** Registers this replica (once) and starts its heartbeat. */
  #register(): Promise<void> {
    this.#registered ??= (async () => {
      const sentAt = performance.now();
      await this.#beat();
      this.#armExpiry(sentAt);
      await this.#pool.query(PRUNE, [this.#options.ttlMs]);
      this.#scheduleBeat();
    })().catch((error: unknown) => {
      this.#registered = undefined;
      throw error;
    });
    return this.#registered;
  }

  async #beat(): Promise<Set<string>> {
    const { rows } = await this.#pool.query<{ tenant_id: string; stream: string }>(HEARTBEAT, [
      this.id,
      this.#options.kind,
      hostname(),
      process.pid,
      this.#options.ttlMs,
    ]);
    return new Set(rows.map((r) => keyOf(r.tenant_id, r.stream)));
  }

  #scheduleBeat(): void {
    if (this.#closed) {
      return;
    }
    this.#beatTimer = setTimeout(() => void this.#heartbeat(), this.#options.heartbeatMs);
    this.#beatTimer.unref();
  }

  async #heartbeat(): Promise<void> {
    const sentAt = performance.now();
    try {
      const renewed = await this.#beat();
      for (const [key, held] of this.#held) {
        if (!renewed.has(key) && held.acquiredAt < sentAt) {
          this.#lose(key, "another replica took the lease over");
        }
      }
      this.#armExpiry(sentAt);
      if (this.#failing) {
        this.#failing = false;
        this.#log.info("lease heartbeat answered again");
      }
    } catch (error) {
      if (!this.#failing && !this.#closed) {
        this.#failing = true;
        this.#log.warn(
          { err: error, leases: [...this.#held.keys()] },
          "lease heartbeat failed: the database does not answer; this replica's cycles stop before its leases expire",
        );
      }
    } finally {
      this.#scheduleBeat();
    }
  }

  /** Our leases last at least until sentAt + TTL (database time ≥ our send time); give them up one beat before. */
  #armExpiry(sentAt: number): void {
    clearTimeout(this.#expiryTimer);
    const left = sentAt + this.#options.ttlMs - this.#options.heartbeatMs - performance.now();
    this.#expiryTimer = setTimeout(
      () => {
        for (const key of [...this.#held.keys()]) {
          this.#lose(key, "the lease could not be renewed in time (database not answering)");
        }
      },
      Math.max(0, left),
    );
    this.#expiryTimer.unref();
  }

  #lose(key: string, reason: string): void {
    const held = this.#held.get(key);
    if (!held) {
      return;
    }
    this.#held.delete(key);
    const [tenantId, ...stream] = key.split("/");
    this.#log.warn({ tenant_id: tenantId, stream: stream.join("/"), reason }, "lease lost: the stream's cycle stops");
    held.controller.abort(new LeaseLostError(`lease of ${key} lost: ${reason}`));
  }

  /** Aborts when this replica stops holding the lease of (tenant, stream); undefined when it does not hold it. */
  signal(tenantId: string, stream: string): AbortSignal | undefined {
    return this.#held.get(keyOf(tenantId, stream))?.controller.signal;
  }

  /** True when this replica holds (or just took) the lease of (tenant, stream). */
  async tryAcquire(tenantId: string, stream: string): Promise<boolean> {
    await this.#register();
    const key = keyOf(tenantId, stream);
    const acquiredAt = performance.now();
    const { rows } = await this.#pool.query(ACQUIRE, [tenantId, stream, this.id, this.#options.ttlMs]);
    if (rows.length === 0) {
      this.#lose(key, "another replica holds it");
      return false;
    }
    if (!this.#held.has(key)) {
      this.#held.set(key, { controller: new AbortController(), acquiredAt });
      this.#log.info({ tenant_id: tenantId, stream }, "lease acquired: this replica polls the stream");
    }
    return true;
  }

  /** Hands the lease back (another replica may take it at once); aborts whatever still uses it. */
  async release(tenantId: string, stream: string, reason = "handed over"): Promise<void> {
    const key = keyOf(tenantId, stream);
    const held = this.#held.get(key);
    if (!held) {
      return;
    }
    this.#held.delete(key);
    held.controller.abort(new LeaseLostError(`lease of ${key} ${reason}`));
    await this.#pool.query(RELEASE, [tenantId, stream, this.id]);
  }

  /** Every lease that another replica holds, by tenant/stream key. */
  async holders(): Promise<Map<string, LeaseHolder>> {
    const { rows } = await this.#pool.query<{
      tenant_id: string;
      stream: string;
      holder: string;
      expires_at: Date;
      live: boolean;
      kind: string | null;
      host: string | null;
      pid: number | null;
    }>(HOLDERS, [this.#options.ttlMs]);
    return new Map(
      rows
        .filter((r) => r.holder !== this.id)
        .map((r) => [
          keyOf(r.tenant_id, r.stream),
          { holder: r.holder, kind: r.kind, host: r.host, pid: r.pid, expiresAt: r.expires_at, live: r.live },
        ]),
    );
  }

  /**
   * `run`: shares the targets fairly between live `run` replicas: this replica keeps at most
   * ceil(targets / replicas) leases, hands extras back (a newly started replica takes them on its next tick) and
   * takes free ones up to its share. `once`/`backfill` (share: unlimited) take every free target.
   */
  async share<T extends Target>(targets: readonly T[]): Promise<Shared<T>> {
    await this.#register();
    let share = targets.length;
    let replicas = 1;
    if (this.#options.kind === "run") {
      replicas = Math.max(
        1,
        (await this.#pool.query<{ replicas: number }>(LIVE_RUN_REPLICAS, [this.#options.ttlMs])).rows[0]?.replicas ?? 1,
      );
      share = Math.ceil(targets.length / replicas);
    }
    const key = (t: T) => keyOf(t.tenant.tenantId, t.stream.name);
    const held = targets.filter((t) => this.#held.has(key(t)));
    for (const extra of held.slice(share)) {
      await this.release(extra.tenant.tenantId, extra.stream.name);
      this.#log.info(
        { tenant_id: extra.tenant.tenantId, stream: extra.stream.name, replicas },
        "lease handed over to another replica",
      );
    }
    const mine = held.slice(0, share);
    // Start at a different place in the list on each replica, so replicas do not all contend for the same leases.
    const offset = targets.length === 0 ? 0 : process.pid % targets.length;
    for (let i = 0; i < targets.length && mine.length < share; i++) {
      const target = targets[(i + offset) % targets.length] as T;
      if (!mine.includes(target) && (await this.tryAcquire(target.tenant.tenantId, target.stream.name))) {
        mine.push(target);
      }
    }
    const others = targets.filter((t) => !mine.includes(t));
    const holders = others.length > 0 ? await this.holders() : new Map<string, LeaseHolder>();
    return {
      mine,
      skipped: others.map((target) => {
        const holder = holders.get(key(target));
        return { target, holder: holder?.live ? holder : undefined };
      }),
    };
  }

  /** Stops heartbeating and deletes this replica's row and leases (a standby takes them at its next tick). */
  async close(): Promise<void> {
    if (this.#closed) {
      return;
    }
    this.#closed = true;
    clearTimeout(this.#beatTimer);
    clearTimeout(this.#expiryTimer);
    for (const [key, held] of this.#held) {
      held.controller.abort(new LeaseLostError(`lease of ${key} released: shutting down`));
    }
    this.#held.clear();
    if (this.#registered) {
      await this.#registered.catch(() => undefined);
      await this.#pool.query(UNREGISTER, [this.id]).catch((err: unknown) => {
        this.#log.warn({ err }, "could not unregister this replica; its leases expire after LEASE_TTL");
      });
    }
    // pool.end() waits for its connections to close, which a vanished server may never confirm. The timer is
    // not unref'd: if nothing else keeps the event loop alive, an unref'd one would let the process exit with
    // close() still pending (and its caller's shutdown unfinished).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#pool.end().catch(() => undefined),
      new Promise((resolve) => (timer = setTimeout(resolve, this.#options.heartbeatMs))),
    ]);
    clearTimeout(timer);
  }
}
