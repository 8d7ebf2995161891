// Hostile database logins for fault tests and the campaign: a BI login (a member of the read-only signin_reader
// role) that tries every way it has had of stopping ingestion — the advisory locks the daemon used to coordinate
// by, connections that posed as replicas (application_name), the partition creator's advisory lock, writes to the
// lease tables, table locks, and a long-open transaction.
//
// A blackholed PostgreSQL needs nothing new: PgProxy (pg-proxy.ts) `setMode("blackhole")` in front of the
// daemon's DATABASE_URL.

import { randomBytes } from "node:crypto";

import pg from "pg";

/** Creates a login in signin_reader (as Grafana's); `url` connects as it to `databaseUrl`'s database. */
export async function createReaderLogin(
  adminUrl: string,
  databaseUrl: string,
): Promise<{ role: string; url: string; drop(): Promise<void> }> {
  const role = `bi_${randomBytes(4).toString("hex")}`;
  const password = randomBytes(9).toString("base64url");
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create role ${role} login password '${password}' in role signin_reader`);
  } finally {
    await admin.end();
  }
  const url = new URL(databaseUrl);
  url.username = role;
  url.password = password;
  return {
    role,
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`select pg_terminate_backend(pid) from pg_stat_activity where usename = $1`, [role]);
        await c.query(`drop role if exists ${role}`).catch(() => undefined);
      } finally {
        await c.end();
      }
    },
  };
}

export interface SquatAttempt {
  what: string;
  /** True when the database let the BI login do it. */
  allowed: boolean;
  /** SQLSTATE when refused (42501: insufficient privilege). */
  code?: string;
}

export interface Squatter {
  attempts: SquatAttempt[];
  close(): Promise<void>;
}

/**
 * Connects as `readerUrl` and holds everything it is allowed to: the old per-stream advisory locks of every
 * (tenant, stream), the partition creator's advisory lock (unless `partitionLock: false`), four connections named like the old lock connections,
 * and an open transaction that has read sign_ins. Tries (and records) writes to the lease tables and table locks.
 */
export async function startLockSquatter(
  readerUrl: string,
  targets: ReadonlyArray<{ tenantId: string; stream: string }>,
  options: { partitionLock?: boolean } = {},
): Promise<Squatter> {
  const clients: pg.Client[] = [];
  const open = async (applicationName?: string) => {
    const c = new pg.Client({
      connectionString: readerUrl,
      ...(applicationName ? { application_name: applicationName } : {}),
    });
    c.on("error", () => undefined);
    await c.connect();
    clients.push(c);
    return c;
  };
  const main = await open("grafana");
  const attempts: SquatAttempt[] = [];
  const attempt = async (what: string, sql: string, params: unknown[] = [], client = main) => {
    await client.query("savepoint squat").catch(() => undefined);
    try {
      const { rows } = await client.query(sql, params);
      const first = rows[0] as Record<string, unknown> | undefined;
      attempts.push({ what, allowed: first === undefined || Object.values(first)[0] !== false });
    } catch (error) {
      await client.query("rollback to savepoint squat").catch(() => undefined);
      attempts.push({ what, allowed: false, code: (error as { code?: string }).code });
    }
  };
  for (const t of targets) {
    await attempt(
      `advisory lock signin-ingest/${t.tenantId}/${t.stream}`,
      `select pg_try_advisory_lock(hashtextextended('signin-ingest/' || $1 || '/' || $2, 0))`,
      [t.tenantId, t.stream],
    );
  }
  if (options.partitionLock !== false) {
    await attempt(
      "advisory lock signin_ensure_partition",
      `select pg_try_advisory_lock(hashtext('signin_ensure_partition'))`,
    );
  }
  for (let i = 0; i < 4; i++) {
    await open("signin-ingest-locks");
  }
  await main.query("begin");
  await attempt(
    "insert into replicas",
    `insert into replicas (id, kind, host, pid) values ('squatter', 'run', 'bi', 1)`,
  );
  for (const t of targets) {
    await attempt(
      `insert a lease of ${t.tenantId}/${t.stream}`,
      `insert into stream_leases (tenant_id, stream, holder, acquired_at, expires_at)
       values ($1, $2, 'squatter', now(), now() + interval '1 day')`,
      [t.tenantId, t.stream],
    );
  }
  await attempt("update stream_leases", `update stream_leases set expires_at = now() + interval '1 day'`);
  await attempt("read stream_leases", `select count(*) from stream_leases`);
  await attempt("lock table stream_leases", `lock table stream_leases in access exclusive mode`);
  await attempt("lock table checkpoints", `lock table checkpoints in exclusive mode`);
  await attempt("lock rows of checkpoints", `select * from checkpoints for update`);
  // Partition creators serialise on this table's lock (migration 0017); 42P01 where it does not exist yet.
  await attempt(
    "lock table signin_partition_maintenance",
    `lock table signin_partition_maintenance in access exclusive mode`,
  );
  await attempt("read sign_ins in an open transaction", `select count(*) from sign_ins`);
  return {
    attempts,
    close: async () => {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    },
  };
}
