// Poison events (issue 12): whatever PostgreSQL refuses for one event sets that event aside in rejected_events with
// its reason and exact text, while the rest of its page is stored and the checkpoint moves. Real simulator over
// HTTP, real PostgreSQL, the real write path (readWindow → storePage → upsert), `once` as a child process, `import`.

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { after, test } from "node:test";

import { EXIT } from "../src/errors.ts";
import { MalformedPageError } from "../src/graph/client.ts";
import { importCommand } from "../src/io/commands.ts";
import { type Simulator, startSimulator } from "../src/simulator/server.ts";
import { readCheckpoint } from "../src/store/checkpoints.ts";
import { MINUTE } from "../src/time.ts";
import { incompressible, type PoisonEvent, poisonEvents } from "./faults/poison.ts";
import { daemonEnv, runCli } from "./helpers/daemon.ts";
import { silentLog, simulatorSuite, type TestDatabase } from "./helpers/db.ts";
import { ingestHarness, storedIds } from "./helpers/ingest.ts";

// Each test gets its own simulator (poison published by one test must not show in another's window).
let sim: Simulator;
const { fresh: freshDatabase } = simulatorSuite(
  () => startSimulator({ generate: false }),
  () => undefined,
);
const simulators: Simulator[] = [];
after(() => Promise.all(simulators.map((s) => s.close())));
async function fresh(): Promise<TestDatabase> {
  sim = await startSimulator({ generate: false });
  simulators.push(sim);
  return freshDatabase();
}

/** `n` ordinary sign-ins spread over [from, to]. */
function normalEvents(n: number, tag: string, from: Date, to: Date): Array<Record<string, unknown>> {
  const span = to.getTime() - from.getTime();
  return Array.from({ length: n }, (_, i) => ({
    id: `${tag}-ok-${i}`,
    createdDateTime: new Date(from.getTime() + Math.floor((span * (i + 0.5)) / n)).toISOString(),
    userPrincipalName: `${tag}-${i}@example.com`,
    status: { errorCode: 0 },
  }));
}

/** Publishes normal and poison events in the last hour (visible from 40 minutes ago), shuffled together. */
function publish(tag: string, normal: number): { normal: string[]; poison: PoisonEvent[] } {
  const now = sim.now().getTime();
  const from = new Date(now - 50 * MINUTE);
  const to = new Date(now - 10 * MINUTE);
  const poison = poisonEvents({ from, to }, tag);
  const plain = normalEvents(normal, tag, from, to);
  sim.addEvents([...plain, ...poison.map((p) => p.event)], { visibleAt: new Date(now - 40 * MINUTE) });
  return { normal: plain.map((e) => e.id as string), poison };
}

async function rejectedRows(
  db: TestDatabase,
): Promise<Array<{ reason: string; raw_text: string; times_seen: number }>> {
  return (await db.pool.query("select reason, raw_text, times_seen from rejected_events order by reason")).rows;
}

/** Every poison event is where it belongs: the rejected ones in rejected_events with their reason and text. */
async function assertPoisonHandled(db: TestDatabase, poison: PoisonEvent[]): Promise<void> {
  const rejected = await rejectedRows(db);
  for (const p of poison.filter((x) => x.expect === "rejected")) {
    const row = rejected.find((r) => r.raw_text.includes(p.marker));
    assert.ok(row, `${p.kind} is in rejected_events`);
    assert.match(row.reason, p.reason as RegExp, p.kind);
  }
  assert.equal(rejected.length, poison.filter((x) => x.expect === "rejected").length);
  const stored = new Set(await storedIds(db, sim.tenantId));
  for (const p of poison) {
    assert.equal(stored.has(p.id as string), p.expect === "stored", `${p.kind} ${p.expect}`);
  }
}

test("each poison sort is set aside with its reason and exact text; the rest of every page is stored; the checkpoint moves", async () => {
  const db = await fresh();
  const { normal, poison } = publish("mix", 20);
  // Small pages: poison events land on several pages, each next to ordinary events.
  const h = ingestHarness(sim, db, { INITIAL_LOOKBACK: "1h", PAGE_SIZE: "6" });
  const result = await h.run();
  const expectedRejected = poison.filter((p) => p.expect === "rejected").length;
  assert.equal(result.rejected, expectedRejected);
  assert.ok(result.pages >= 5, `several pages (${result.pages})`);
  const stored = new Set(await storedIds(db, sim.tenantId));
  for (const id of normal) {
    assert.ok(stored.has(id), `${id} stored`);
  }
  await assertPoisonHandled(db, poison);
  assert.equal(
    (await readCheckpoint(db.pool, sim.tenantId, "interactiveUser"))?.getTime(),
    result.windows.at(-1)?.to.getTime(),
  );

  // Rejected events keep the text Graph sent (JSON.stringify would have written 1e999999 as null).
  const rejected = await rejectedRows(db);
  assert.ok(rejected.some((r) => r.raw_text.includes('"processingTimeInMilliseconds":1e999999')));
  assert.ok(
    rejected.some((r) => r.raw_text.includes("\\ud800")),
    "the surrogate escape is kept as text",
  );

  // Too long for an index: stored, the typed column cut to 400 bytes, raw whole.
  const long = (
    await db.pool.query<{
      id: string;
      upn: number;
      raw_upn: number;
      country: number;
      raw_country: number;
      city: number;
    }>(
      `select id, octet_length(user_principal_name) as upn, length(raw ->> 'userPrincipalName') as raw_upn,
              octet_length(location_country_or_region) as country,
              length(raw -> 'location' ->> 'countryOrRegion') as raw_country, octet_length(location_city) as city
       from sign_ins where id like 'mix-long-%' order by id`,
    )
  ).rows;
  assert.deepEqual(long, [
    { id: "mix-long-country", upn: 15, raw_upn: 15, country: 400, raw_country: 3000, city: 400 },
    { id: "mix-long-user-principal-name", upn: 400, raw_upn: 3012, country: 2, raw_country: 2, city: 5 },
  ]);
  // The rollups and first-seen countries the triggers fill took the cut values too.
  const countries = await db.pool.query<{ n: number }>(
    "select count(*)::int as n from user_countries where octet_length(country_or_region) = 400",
  );
  assert.equal(countries.rows[0]?.n, 1);

  // Again (the overlap re-reads part of the window): nothing new, nothing fails, no rejected event stored twice.
  const again = await h.run();
  assert.equal(again.inserted, 0);
  const seen = (await rejectedRows(db)).map((r) => r.times_seen);
  assert.equal(seen.length, expectedRejected);
  assert.ok(seen.every((n) => n <= 2) && seen.some((n) => n === 2), `times_seen ${seen.join(",")}`);
  await h.close();
});

test("directory audits: poison audit events are set aside, the rest stored", async () => {
  const db = await fresh();
  const now = sim.now().getTime();
  const at = (minutes: number) => new Date(now - minutes * MINUTE).toISOString();
  const ok = [1, 2, 3].map((i) => ({ id: `audit-ok-${i}`, activityDateTime: at(20 + i), category: "UserManagement" }));
  const poison = [
    { id: "audit-surrogate", activityDateTime: at(25), activityDisplayName: "Add \udc00 user" },
    {
      id: "audit-number",
      activityDateTime: at(26),
      "@simulator.json": `{"id":"audit-number","activityDateTime":"${at(26)}","result":1e-999999}`,
    },
    { id: "audit-date", activityDateTime: "2026-04-31T10:00:00Z" },
    {
      id: "audit-long",
      activityDateTime: at(27),
      initiatedBy: { user: { userPrincipalName: incompressible(3000, 3) } },
    },
  ];
  sim.addAudits([...ok, ...poison], { visibleAt: new Date(now - 40 * MINUTE) });
  const h = ingestHarness(sim, db, { STREAMS: "directoryAudits", INITIAL_LOOKBACK: "1h" });
  const result = await h.run();
  assert.equal(result.rejected, 3);
  const ids = (await db.pool.query<{ id: string }>("select id from directory_audits")).rows.map((r) => r.id).sort();
  assert.deepEqual(ids, ["audit-long", "audit-ok-1", "audit-ok-2", "audit-ok-3"]);
  const reasons = (await rejectedRows(db)).map((r) => r.reason);
  assert.equal(reasons.length, 3);
  for (const pattern of [/unpaired UTF-16 surrogate/, /1e-999999, outside the range/, /activityDateTime/]) {
    assert.ok(
      reasons.some((r) => pattern.test(r)),
      `${pattern} in ${reasons.join(" | ")}`,
    );
  }
  assert.ok(await readCheckpoint(db.pool, sim.tenantId, "directoryAudits"));
  await h.close();
});

test("`once` (a child process) exits 0 with poison events in the window and stores the rest", async () => {
  const db = await fresh();
  const { normal, poison } = publish("once", 10);
  const result = await runCli(["once"], daemonEnv(sim, db.url, { INITIAL_LOOKBACK: "1h" }));
  assert.equal(result.code, EXIT.ok, result.stderr + result.stdout);
  const line = result.logs.find((l) => l.msg === "cycle complete");
  assert.equal(line?.rejected, poison.filter((p) => p.expect === "rejected").length);
  const stored = new Set(await storedIds(db, sim.tenantId));
  assert.ok(normal.every((id) => stored.has(id)));
  await assertPoisonHandled(db, poison);
  assert.ok(await readCheckpoint(db.pool, sim.tenantId, "interactiveUser"));
});

test("a page PostgreSQL refuses for a reason the checks do not foresee is bisected: only the refused events are set aside", async () => {
  const db = await fresh();
  // An index like an operator might add: a 3 KB value cannot be indexed (54000), which no check in events.ts knows.
  await db.pool.query("create index sign_ins_test_blob_idx on sign_ins ((raw ->> 'testBlob'))");
  const now = sim.now().getTime();
  const from = new Date(now - 50 * MINUTE);
  const to = new Date(now - 10 * MINUTE);
  const plain = normalEvents(30, "blob", from, to);
  const bad = [7, 19].map((i) => ({ ...plain[i], id: `blob-bad-${i}`, testBlob: incompressible(3000, i) }));
  sim.addEvents([...plain, ...bad], { visibleAt: new Date(now - 40 * MINUTE) });
  const h = ingestHarness(sim, db, { INITIAL_LOOKBACK: "1h" });
  const result = await h.run();
  assert.equal(result.rejected, 2);
  assert.deepEqual((await storedIds(db, sim.tenantId)).sort(), plain.map((e) => e.id as string).sort());
  const rejected = await rejectedRows(db);
  assert.equal(rejected.length, 2);
  for (const r of rejected) {
    assert.match(r.reason, /^PostgreSQL refused it: index row size \d+ exceeds .* \(SQLSTATE 54000\)$/);
    assert.match(r.raw_text, /blob-bad-(7|19)/);
  }
  assert.ok(
    h
      .logs()
      .some((l) => l.msg === "PostgreSQL refused the page's data; storing it again with the refused events isolated"),
  );
  assert.equal(
    (await readCheckpoint(db.pool, sim.tenantId, "interactiveUser"))?.getTime(),
    result.windows.at(-1)?.to.getTime(),
  );
  await h.close();
});

test("a page with more events than $top and than Graph's 1,000 is refused as malformed: nothing stored, the checkpoint stays", async () => {
  const db = await fresh();
  const now = sim.now().getTime();
  const value = normalEvents(1001, "oversized", new Date(now - 50 * MINUTE), new Date(now - 10 * MINUTE));
  sim.setFaults([
    {
      match: { path: "/auditLogs/" },
      kind: "status",
      status: 200,
      body: JSON.stringify({ "@odata.context": `${sim.url}/v1.0/$metadata#auditLogs/signIns`, value }),
    },
  ]);
  try {
    const h = ingestHarness(sim, db, { INITIAL_LOOKBACK: "1h", PAGE_SIZE: "10" });
    await assert.rejects(h.run(), (error: unknown) => {
      assert.ok(error instanceof MalformedPageError);
      assert.match(error.message, /page of 1001 events for \$top=10/);
      return true;
    });
    assert.equal((await db.pool.query("select 1 from sign_ins")).rowCount, 0);
    assert.equal((await db.pool.query("select 1 from rejected_events")).rowCount, 0);
    assert.equal(await readCheckpoint(db.pool, sim.tenantId, "interactiveUser"), undefined);
    await h.close();
  } finally {
    sim.setFaults([]);
  }
});

test("a page a little over $top (Graph has been seen to send more rows than $top) is stored, not refused", async () => {
  const db = await fresh();
  const now = sim.now().getTime();
  const value = normalEvents(11, "over-top", new Date(now - 50 * MINUTE), new Date(now - 10 * MINUTE));
  sim.setFaults([
    {
      match: { path: "/auditLogs/" },
      kind: "status",
      status: 200,
      body: JSON.stringify({ "@odata.context": `${sim.url}/v1.0/$metadata#auditLogs/signIns`, value }),
      times: 1,
    },
  ]);
  try {
    const h = ingestHarness(sim, db, { INITIAL_LOOKBACK: "1h", PAGE_SIZE: "10" });
    await h.run();
    const stored = await db.pool.query("select count(*)::int as n from sign_ins where id like '%over-top%'");
    assert.equal(stored.rows[0].n, 11);
    await h.close();
  } finally {
    sim.setFaults([]);
  }
});

test("import: poison lines go to rejected_events with their reason; the rest of the file and the other files are imported", async () => {
  const db = await fresh();
  const dir = await mkdtemp(path.join(tmpdir(), "poison-import-"));
  try {
    const from = new Date("2026-11-20T10:00:00Z");
    const to = new Date("2026-11-20T11:00:00Z");
    const poison = poisonEvents({ from, to }, "imp");
    const plain = normalEvents(5, "imp", from, to);
    const lines = [
      ...plain.slice(0, 2).map((e) => JSON.stringify(e)),
      ...poison.map((p) => (p.event["@simulator.json"] as string | undefined) ?? JSON.stringify(p.event)),
      ...plain.slice(2, 4).map((e) => JSON.stringify(e)),
    ];
    const first = path.join(dir, "poisoned.jsonl");
    await writeFile(first, `${lines.join("\n")}\n`);
    const second = path.join(dir, "clean.json");
    await writeFile(second, JSON.stringify({ value: [plain[4]] }));
    let text = "";
    const out = new Writable({
      write(chunk: Buffer, _encoding, done) {
        text += chunk.toString();
        done();
      },
    });
    const tenant = "import-tenant";
    const code = await importCommand([first, second], {
      pool: db.pool,
      log: silentLog,
      tenants: [tenant],
      out,
      now: () => new Date("2026-11-21T00:00:00Z"),
    });
    const expectedRejected = poison.filter((p) => p.expect === "rejected").length;
    assert.equal(code, EXIT.ok, text);
    assert.match(text, new RegExp(`rejected ${expectedRejected}\\b`));
    const ids = (await db.pool.query<{ id: string }>("select id from sign_ins where tenant_id = $1", [tenant])).rows
      .map((r) => r.id)
      .sort();
    const expectedStored = [
      ...plain.map((e) => e.id as string),
      ...poison.filter((p) => p.expect === "stored").map((p) => p.id as string),
    ];
    assert.deepEqual(ids, expectedStored.sort());
    const rejected = await rejectedRows(db);
    assert.equal(rejected.length, expectedRejected);
    for (const p of poison.filter((x) => x.expect === "rejected")) {
      const row = rejected.find((r) => r.raw_text.includes(p.marker));
      assert.ok(row, p.kind);
      assert.match(row.reason, p.reason as RegExp);
      assert.match(row.reason, /\(import of poisoned\.jsonl\)$/);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("import: a batch PostgreSQL refuses for a reason the checks do not foresee is bisected, the rest imported", async () => {
  const db = await fresh();
  await db.pool.query("create index sign_ins_test_blob_idx on sign_ins ((raw ->> 'testBlob'))");
  const dir = await mkdtemp(path.join(tmpdir(), "poison-import-"));
  try {
    const events = normalEvents(6, "impblob", new Date("2026-11-20T10:00:00Z"), new Date("2026-11-20T11:00:00Z"));
    const bad = { ...events[3], testBlob: incompressible(3000, 9) };
    const file = path.join(dir, "blob.json");
    await writeFile(file, JSON.stringify([...events.slice(0, 3), bad, ...events.slice(4)]));
    const out = new Writable({ write: (_chunk, _encoding, done) => done() });
    const code = await importCommand(["--batch-size", "4", file], {
      pool: db.pool,
      log: silentLog,
      tenants: ["import-tenant"],
      out,
      now: () => new Date("2026-11-21T00:00:00Z"),
    });
    assert.equal(code, EXIT.ok);
    const ids = (await db.pool.query<{ id: string }>("select id from sign_ins")).rows.map((r) => r.id).sort();
    assert.deepEqual(
      ids,
      events
        .filter((_, i) => i !== 3)
        .map((e) => e.id as string)
        .sort(),
    );
    const rejected = await rejectedRows(db);
    assert.equal(rejected.length, 1);
    assert.match(
      rejected[0]?.reason ?? "",
      /^PostgreSQL refused it: index row size .*\(SQLSTATE 54000\) \(import of blob\.json\)$/,
    );
    assert.match(rejected[0]?.raw_text ?? "", /impblob-ok-3/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
