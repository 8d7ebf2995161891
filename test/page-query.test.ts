// A page's bytes go to PostgreSQL as their own Buffer (src/store/page-query.ts): the Bind message framed around it
// must be byte for byte node-postgres' own, and the query must behave as client.query does (rows, errors, the
// connection usable after an error). The page statement (src/store/signins.ts) sends its page that way, in a
// transaction whose work_mem keeps the page's tuplestores off disk.

import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { after, before, test } from "node:test";

import pg from "pg";

import { pageEvents } from "../src/events/classify.ts";
import { jsonbBytes, scanPage } from "../src/events/jsonb.ts";
import { bindAround, freeSentBuffer, queryWithBuffer } from "../src/store/page-query.ts";
import { ensureMonths } from "../src/store/partitions.ts";
import { UPSERT_SIGN_INS, upsertSignIns } from "../src/store/signins.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(() => db.drop());

/** What node-postgres' Connection writes for bind(config). */
function nodePostgresBind(config: object): Buffer {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c));
  const connection = new (pg as unknown as { Connection: new (c: object) => { bind(c: object): void } }).Connection({
    stream,
  });
  connection.bind(config);
  return Buffer.concat(chunks);
}

test("the Bind message framed around a page is node-postgres' own, byte for byte", () => {
  const page = jsonbBytes('{"value":[{"id":"a","name":"山田 太郎"}]}');
  const mapper = (v: unknown): string | Buffer | null =>
    v instanceof Date
      ? v.toISOString()
      : Array.isArray(v)
        ? `{${v.join(",")}}`
        : v instanceof Buffer || typeof v === "string"
          ? v
          : null;
  const cases = [
    { values: ["tenant", "interactiveUser", new Date(0), page, [true, false], "beta"], index: 3 },
    { values: ["tenant", "stream", new Date(0), page, [], null], index: 3, portal: "", statement: "" },
    { values: [page], index: 0, statement: "named", binary: true },
    { values: ["ü", null, page, Buffer.from([1, 2, 3])], index: 2, portal: "p" },
  ];
  for (const c of cases) {
    const config = { ...c, valueMapper: mapper };
    const { head, tail } = bindAround(config, c.index, page.length);
    assert.deepEqual(Buffer.concat([head, page, tail]), nodePostgresBind(config), JSON.stringify(c.values));
  }
});

test("a Buffer parameter is written as the caller's Buffer itself, and the statement answers as client.query does", async () => {
  const client = await db.pool.connect();
  try {
    const written = spyOnSocket(client);
    const page = jsonbBytes(
      JSON.stringify({
        value: [
          { id: "a", n: 1 },
          { id: "b", n: 2 },
        ],
      }),
    );
    const sql = `select e ->> 'id' as id, $1::text as t, $3::date as d
      from jsonb_array_elements($2::jsonb -> 'value') as e order by 1`;
    const result = await queryWithBuffer<{ id: string; t: string; d: Date }>(
      client,
      sql,
      ["x", page, new Date("2026-05-04T12:00:00Z")],
      1,
    );
    assert.ok(written.includes(page), "the page went to the socket as its own Buffer (no copy)");
    assert.deepEqual(
      result.rows.map((r) => [r.id, r.t]),
      [
        ["a", "x"],
        ["b", "x"],
      ],
    );
    assert.deepEqual(
      result.rows.map((r) => r.d instanceof Date),
      [true, true],
    );
    // PostgreSQL refusing the bytes is the usual DatabaseError, and the connection goes on.
    const bad = jsonbBytes('{"value": [1, }');
    await assert.rejects(queryWithBuffer(client, sql, ["x", bad, null], 1), (e: Error & { code?: string }) => {
      assert.equal(e.code, "22P02");
      return true;
    });
    const again = await client.query<{ one: number }>("select 1 as one");
    assert.equal(again.rows[0]?.one, 1);
    // Without a Buffer at the index it is client.query.
    const plain = await queryWithBuffer<{ id: string }>(client, sql, ["y", '{"value":[{"id":"c"}]}', null], 1);
    assert.deepEqual(
      plain.rows.map((r) => r.id),
      ["c"],
    );
  } finally {
    client.release();
  }
});

type Write = (b: Buffer, done?: () => void) => boolean;

function socketOf(client: pg.PoolClient): { write: Write } {
  return (client as unknown as { connection: { stream: { write: Write } } }).connection.stream;
}

/** The socket's writes from now on (the chunks themselves, by identity). */
function spyOnSocket(client: pg.PoolClient): Buffer[] {
  const socket = socketOf(client);
  const written: Buffer[] = [];
  const write = socket.write.bind(socket);
  socket.write = (b, done) => {
    written.push(b);
    return write(b, done);
  };
  return written;
}

test("a sent page's memory is given back at once, never while the socket may still read it or when it is a slice", async () => {
  const client = await db.pool.connect();
  const socket = socketOf(client);
  const write = socket.write.bind(socket);
  try {
    const events = Array.from({ length: 200 }, (_, i) => ({ id: `e${String(i)}`, pad: "x".repeat(500) }));
    const page = jsonbBytes(JSON.stringify({ value: events }));
    const size = page.length;
    assert.equal(
      page.buffer.byteLength,
      size,
      "a page of ~100 KB is an ArrayBuffer of its own (Node pools buffers below 32 KB)",
    );
    // The socket's "done with these bytes" for the page is held back, as when the kernel's buffer is full.
    const held: Array<() => void> = [];
    socket.write = (b, done) => write(b, b === page && done ? () => held.push(done) : done);
    const sql = `select count(*)::int as n from jsonb_array_elements($1::jsonb -> 'value')`;
    const { rows } = await queryWithBuffer<{ n: number }>(client, sql, [page], 0);
    assert.equal(rows[0]?.n, 200);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(held.length, 1, "the page's write reported done to the socket's caller");
    assert.equal(freeSentBuffer(page), false, "not freed while its write is pending");
    assert.equal(page.length, size, "still whole");
    assert.equal(JSON.parse(page.toString("utf8", 1)).value.length, 200);
    for (const done of held) {
      done();
    }
    assert.equal(freeSentBuffer(page), true, "freed once the socket is done with it");
    assert.equal(page.length, 0, "a freed page reads as empty");
    assert.equal(page.buffer.byteLength, 0);
    assert.equal(freeSentBuffer(page), false, "freed once");

    // Buffers sharing their memory are left alone: Node's pool of small buffers, a slice of a larger one.
    const small = jsonbBytes('{"value":[]}');
    assert.ok(small.buffer.byteLength > small.length);
    assert.equal(freeSentBuffer(small), false);
    assert.equal(small.toString("utf8", 1), '{"value":[]}');
    const large = Buffer.alloc(100_000, 0x20);
    const slice = large.subarray(0, 50_000);
    assert.equal(freeSentBuffer(slice), false);
    assert.equal(large.length, 100_000);
  } finally {
    socket.write = write;
    client.release();
  }
});

async function workMem(client: pg.PoolClient): Promise<string | undefined> {
  return (await client.query<{ w: string }>("select current_setting('work_mem') as w")).rows[0]?.w;
}

/** Temporary-file bytes this database has written so far. */
async function tempBytes(client: pg.PoolClient): Promise<number> {
  await client.query("select pg_stat_force_next_flush()");
  const { rows } = await client.query<{ b: string }>(
    "select temp_bytes as b from pg_stat_database where datname = current_database()",
  );
  return Number(rows[0]?.b);
}

test("the page statement sends its page in place, in a transaction whose work_mem keeps its tuplestores off disk", async () => {
  await ensureMonths(db.pool, [new Date("2026-05-01T00:00:00Z")]);
  // ~6 MB: both tuplestores of the statement exceed the 4 MB set below.
  const page = (tag: string) =>
    jsonbBytes(
      JSON.stringify({
        value: Array.from({ length: 600 }, (_, i) => ({
          id: `${tag}-${i}`,
          createdDateTime: "2026-05-04T10:00:00Z",
          userPrincipalName: `u${i}@contoso.example`,
          pad: "x".repeat(10_000),
        })),
      }),
    );
  const client = await db.pool.connect();
  try {
    await client.query("set work_mem = '4MB'");
    // The same statement without the page transaction's setting spills (so the check below can see a spill).
    const before = await tempBytes(client);
    await client.query("begin");
    await queryWithBuffer(client, UPSERT_SIGN_INS, ["t-wm", "interactiveUser", new Date(), page("a"), [], null], 3);
    await client.query("commit");
    assert.ok((await tempBytes(client)) - before > 4 * 1024 * 1024, "at 4 MB the statement writes temporary files");

    const bytes = page("b");
    const written = spyOnSocket(client);
    const start = await tempBytes(client);
    await client.query("begin");
    const r = await upsertSignIns(client, "t-wm", "interactiveUser", pageEvents(scanPage(bytes)).events, new Date());
    const inTransaction = await workMem(client);
    await client.query("commit");
    assert.equal(r.inserted, 600);
    assert.ok(written.includes(bytes), "the page went to the socket as its own Buffer (no copy)");
    assert.equal(inTransaction, "64MB");
    assert.equal((await tempBytes(client)) - start, 0, "no temporary files for the page");
    assert.equal(await workMem(client), "4MB", "for the transaction only");

    // A higher setting is kept.
    await client.query("set work_mem = '256MB'");
    await client.query("begin");
    await upsertSignIns(client, "t-wm", "interactiveUser", pageEvents(scanPage(page("c"))).events, new Date());
    assert.equal(await workMem(client), "256MB");
    await client.query("commit");
  } finally {
    await client.query("reset work_mem").catch(() => undefined);
    client.release();
  }
});
