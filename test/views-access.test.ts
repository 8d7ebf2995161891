// The read-only role signin_reader can read every table and view and change nothing; the schema migrates with a
// role that is neither superuser nor CREATEROLE (the daemon's role).

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";

import pg from "pg";

import { migrate } from "../src/store/migrate.ts";
import { createTestDatabase, silentLog, type TestDatabase } from "./helpers/db.ts";
import { upsertPages } from "./helpers/views-fixture.ts";

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
  await db.pool.query("select signin_ensure_partition('2026-03-01Z')");
  await upsertPages(
    db.pool,
    "t",
    [{ id: "a", createdDateTime: "2026-03-02T10:00:00Z", status: { errorCode: 0 } }],
    new Date(),
  );
});
after(() => db.drop());

async function asReader<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.pool.connect();
  try {
    await client.query("set role signin_reader");
    return await work(client);
  } finally {
    await client.query("reset role");
    client.release();
  }
}

const relations = async (kind: "BASE TABLE" | "VIEW"): Promise<string[]> =>
  (
    await db.pool.query<{ table_name: string }>(
      `select table_name from information_schema.tables t
       where table_schema = 'public' and table_type = $1
        and table_name not in ('schema_migrations', 'replicas', 'stream_leases')
         and not exists (select 1 from pg_inherits i where i.inhrelid = (quote_ident(t.table_name))::regclass)
       order by 1`,
      [kind],
    )
  ).rows.map((r) => r.table_name);

test("signin_reader is a NOLOGIN group role", async () => {
  const { rows } = await db.pool.query(
    "select rolcanlogin, rolsuper, rolcreaterole from pg_roles where rolname = 'signin_reader'",
  );
  assert.deepEqual(rows, [{ rolcanlogin: false, rolsuper: false, rolcreaterole: false }]);
});

test("signin_reader can select every table and view, including partitions created after the migration", async () => {
  const views = await relations("VIEW");
  const tables = await relations("BASE TABLE");
  assert.ok(views.length >= 13, views.join(","));
  assert.ok(tables.includes("sign_ins") && tables.includes("sign_in_ca_policies") && tables.includes("cycles"));
  await db.pool.query("select signin_ensure_partition('2026-09-01Z')"); // a month created later, by the daemon
  await asReader(async (c) => {
    for (const name of [...views, ...tables]) {
      await c.query(`select * from ${name} limit 1`);
    }
    const { rows } = await c.query("select count(*)::int as n from sign_ins");
    assert.equal(rows[0].n, 1);
  });
});

test("signin_reader has no privilege at all on the replicas' coordination tables (0019)", async () => {
  const { rows } = await db.pool.query(
    `select t, p from unnest(array['replicas', 'stream_leases']) t,
       unnest(array['select', 'insert', 'update', 'delete', 'truncate', 'references', 'trigger']) p
     where has_table_privilege('signin_reader', t, p)`,
  );
  assert.deepEqual(rows, []);
});

test("signin_reader cannot insert, update, delete, truncate or create", async () => {
  const denied = [
    "insert into checkpoints (tenant_id, stream, position, updated_at) values ('x', 'y', now(), now())",
    "update sign_ins set stream = 'x'",
    "delete from sign_ins",
    "delete from sign_in_ca_policies",
    "truncate cycles",
    "create table reader_was_here (id int)",
    "create view reader_view as select 1",
    "select signin_ensure_partition('2027-01-01Z')",
  ];
  await asReader(async (c) => {
    for (const sql of denied) {
      await assert.rejects(c.query(sql), (e: { code?: string }) => e.code === "42501", sql);
    }
  });
});

test("the migrations run as a plain database owner (no superuser, no CREATEROLE) and still grant signin_reader", async () => {
  const suffix = randomBytes(4).toString("hex");
  const role = `signin_owner_${suffix}`;
  const database = `signin_owned_${suffix}`;
  const admin = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`create role ${role} login password 'owner-pw' nosuperuser nocreaterole nocreatedb`);
    await admin.query(`create database ${database} owner ${role}`);
    const url = new URL(process.env.TEST_DATABASE_URL ?? "");
    url.username = role;
    url.password = "owner-pw";
    url.pathname = `/${database}`;
    await migrate(url.toString(), silentLog);
    const owned = new pg.Client({ connectionString: url.toString() });
    await owned.connect();
    try {
      const { rows } = await owned.query(
        `select has_table_privilege('signin_reader', 'sign_ins', 'select') as read,
                has_table_privilege('signin_reader', 'v_password_spray_candidates', 'select') as view,
                has_table_privilege('signin_reader', 'sign_ins', 'insert') as write`,
      );
      assert.deepEqual(rows[0], { read: true, view: true, write: false });
    } finally {
      await owned.end();
    }
  } finally {
    await admin.query(`drop database if exists ${database} with (force)`);
    await admin.query(`drop role if exists ${role}`);
    await admin.end();
  }
});
