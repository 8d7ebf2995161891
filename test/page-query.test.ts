// A page's bytes go to PostgreSQL as their own Buffer (src/store/page-query.ts): the Bind message framed around it
// must be byte for byte node-postgres' own, and the query must behave as client.query does (rows, errors, the
// connection usable after an error).

import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { after, before, test } from "node:test";

import pg from "pg";

import { jsonbBytes } from "../src/events/jsonb.ts";
import { bindAround, queryWithBuffer } from "../src/store/page-query.ts";
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
    const socket = (client as unknown as { connection: { stream: { write(b: Buffer): boolean } } }).connection.stream;
    const written: Buffer[] = [];
    const write = socket.write.bind(socket);
    socket.write = (b: Buffer) => {
      written.push(b);
      return write(b);
    };
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
