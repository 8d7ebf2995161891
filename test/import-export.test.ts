// `import` and `export`: legacy Azure AD Graph pages (the 2016 sample's SigninActivities*.json), Graph pages, arrays
// and JSON lines; idempotency, rejected events, a bad file among good ones, streaming of a large file, and an export
// round trip into a fresh database.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { PassThrough, type Writable } from "node:stream";
import { before, describe, it } from "node:test";

import { EXIT } from "../src/errors.ts";
import { exportCommand, importCommand, parseTime } from "../src/io/commands.ts";
import { exportEvents } from "../src/io/export.ts";
import { importFiles } from "../src/io/import.ts";
import { JsonEventScanner, type ScannedItem } from "../src/io/scan.ts";
import { fromAzureAdGraph, SHAPE_LABELS } from "../src/io/shapes.ts";
import { makeDirectoryAudit } from "../src/simulator/audits.ts";
import { makeSignIn } from "../src/simulator/events.ts";
import { silentLog, type TestDatabase } from "./helpers/db.ts";
import { importBed } from "./helpers/import.ts";

const TENANT = "00000000-0000-4000-8000-0000000000aa";
const OTHER = "00000000-0000-4000-8000-0000000000bb";
const FIXTURES = path.join(import.meta.dirname, "fixtures");
const NOW = new Date("2026-11-28T12:00:00Z");

const { dir: tmpDir, fresh, deps, tmpFile } = importBed(TENANT, NOW);

function collect(): { stream: Writable; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString("utf8") };
}

/** The legacy fixtures, page 0 re-encoded as Windows PowerShell 5's Out-File writes it (UTF-16LE with a BOM). */
async function legacyFiles(): Promise<string[]> {
  const page0 = await readFile(path.join(FIXTURES, "SigninActivities0.json"), "utf8");
  const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(page0.replace(/\n/g, "\r\n"), "utf16le")]);
  return [await tmpFile("SigninActivities0.json", utf16), path.join(FIXTURES, "SigninActivities1.json")];
}

async function rows(db: TestDatabase, table = "sign_ins") {
  const time = table === "sign_ins" ? "created_date_time" : "activity_date_time";
  const r = await db.pool.query<{
    tenant_id: string;
    id: string;
    at: Date;
    stream: string;
    raw: Record<string, unknown>;
  }>(`select tenant_id, id, ${time} as at, stream, raw from ${table} order by ${time}, tenant_id, id`);
  return r.rows;
}

describe("the JSON scanner", () => {
  const scan = (text: string, chunk = 7): ScannedItem[] => {
    const items: ScannedItem[] = [];
    const s = new JsonEventScanner((i) => items.push(i));
    for (let i = 0; i < text.length; i += chunk) {
      s.push(text.slice(i, i + chunk));
    }
    s.end();
    return items;
  };

  it("finds events in pages, arrays and JSON lines, across chunk boundaries and escapes", () => {
    const tricky = `{"id":"a\\"]},{[","createdDateTime":"2025-01-01T00:00:00Z","value":{"x":[1,2]}}`;
    const page = `{"@odata.context":"c","value":[${tricky} , {"id":"b"}],"@odata.nextLink":"n"}`;
    for (const chunk of [1, 3, 7, 1000]) {
      const items = scan(`${page}\n[{"id":"c"},null,3]\n{"id":"d","value":"x"}\n{"value":[]}\n`, chunk);
      assert.deepEqual(
        items.map((i) => [i.container, JSON.parse(i.text)?.id ?? JSON.parse(i.text)]),
        [
          ["page", 'a"]},{['],
          ["page", "b"],
          ["array", "c"],
          ["array", null],
          ["array", 3],
          ["line", "d"],
        ],
      );
    }
  });

  it("refuses text that is not JSON containers, and truncated text", () => {
    assert.throws(() => scan("<!DOCTYPE html><html></html>"), /expected a JSON object or array/);
    assert.throws(() => scan("id,createdDateTime\n1,2025-01-01"), /expected a JSON object or array/);
    assert.throws(() => scan(`{"value":[{"id":"a"},{"id":`), /unexpected end of text/);
    assert.throws(() => scan(`{"value":[{"id":"a"}}`), /unexpected '}'/);
  });
});

describe("legacy Azure AD Graph mapping", () => {
  it("adds the Graph fields and keeps every original one", () => {
    const legacy = {
      id: "x",
      signinDateTime: "2016-09-01T07:00:00.1234567Z",
      loginStatus: 1,
      signinErrorCode: 50126,
      failureReason: "Invalid username or password.",
      deviceInformation: "HOST-1;Windows 10;Edge 14;",
      location: "Redmond, Washington, US",
      mfaRequired: true,
      mfaAuthMethod: "PhoneAppOTP",
    };
    const graph = fromAzureAdGraph(legacy);
    assert.equal(graph.createdDateTime, legacy.signinDateTime);
    assert.deepEqual(graph.status, { errorCode: 50126, failureReason: legacy.failureReason, additionalDetails: null });
    assert.deepEqual(graph.deviceDetail, {
      deviceId: "",
      displayName: "HOST-1",
      operatingSystem: "Windows 10",
      browser: "Edge 14",
      isCompliant: null,
      isManaged: null,
      trustType: null,
    });
    assert.deepEqual(graph.location, {
      city: "Redmond",
      state: "Washington",
      countryOrRegion: "US",
      geoCoordinates: null,
    });
    assert.equal(graph.authenticationRequirement, "multiFactorAuthentication");
    assert.equal(graph["@signinIngest.source"], "azureAdGraph");
    assert.deepEqual(graph["@signinIngest.replaced"], { location: legacy.location });
    for (const [k, v] of Object.entries(legacy)) {
      if (k !== "location") {
        assert.deepEqual(graph[k], v, k);
      }
    }
    const zoneless = fromAzureAdGraph({ id: "y", signinDateTime: "2016-09-01T07:00:00", loginStatus: 0 });
    assert.equal(zoneless.createdDateTime, "2016-09-01T07:00:00Z");
    assert.deepEqual(zoneless.status, { errorCode: 0, failureReason: null, additionalDetails: null });
    const millis = fromAzureAdGraph({ id: "z", signinDateTimeInMillis: 1472713200123, loginStatus: 1 });
    assert.equal(millis.createdDateTime, "2016-09-01T07:00:00.123Z");
    assert.equal((millis.status as { errorCode: unknown }).errorCode, null, "a failure without a code is not 0");
  });
});

describe("import", () => {
  it("loads the 2016 sample's pages (UTF-16 and UTF-8), idempotently, with bad events set aside", async () => {
    const db = await fresh();
    const files = await legacyFiles();
    const first = await importFiles(files, deps(db));
    assert.equal(first.failed, 0, JSON.stringify(first.files));
    const [p0, p1] = first.files;
    assert.equal(p0?.shape, SHAPE_LABELS.azureAdGraph);
    assert.equal(p0?.container, "1 page");
    assert.deepEqual([p0?.read, p0?.inserted, p0?.updated, p0?.unchanged, p0?.rejected], [13, 12, 0, 0, 1]);
    assert.deepEqual(
      [p1?.read, p1?.inserted, p1?.updated, p1?.unchanged, p1?.rejected],
      [15, 12, 0, 1, 2],
      "page 1 re-sends page 0's last event: unchanged",
    );

    const stored = await rows(db);
    assert.equal(stored.length, 24);
    assert.ok(stored.every((r) => r.stream === "interactiveUser" && r.tenant_id === TENANT));
    assert.equal(stored[0]?.at.toISOString(), "2016-08-31T16:49:00.896Z");
    const failed = stored.find((r) => r.raw.loginStatus === 1);
    assert.ok(failed);
    assert.equal(failed.raw["@signinIngest.source"], "azureAdGraph");
    assert.ok(typeof failed.raw.signinDateTime === "string" && "deviceInformation" in failed.raw, "originals kept");
    const typed = await db.pool.query<Record<string, unknown>>(
      `select user_principal_name, app_display_name, ip, status_error_code, status_failure_reason, device_operating_system,
              device_browser, location_city, location_country_or_region, location_latitude, is_interactive, sign_in_event_type
       from sign_ins where id = $1`,
      [failed.id],
    );
    const t = typed.rows[0] as Record<string, unknown>;
    assert.equal(t.user_principal_name, failed.raw.userPrincipalName);
    assert.equal(t.status_error_code, failed.raw.signinErrorCode);
    assert.equal(t.status_failure_reason, failed.raw.failureReason);
    assert.equal(t.device_operating_system, String(failed.raw.deviceInformation).split(";")[1]);
    assert.equal(t.location_country_or_region, (failed.raw.location as { country: string }).country);
    assert.equal(typeof t.location_latitude, "number");
    assert.equal(t.is_interactive, true);
    assert.equal(t.sign_in_event_type, "interactiveUser");
    assert.equal(t.ip, failed.raw.ipAddress);

    const parts = await db.pool.query<{ name: string }>(
      "select relname as name from pg_class where relname in ('sign_ins_2016_08', 'sign_ins_2016_09')",
    );
    assert.equal(parts.rowCount, 2, "the months' partitions were created");
    const rejected = await db.pool.query<{ stream: string; reason: string; times_seen: number }>(
      "select stream, reason, times_seen from rejected_events where tenant_id = $1 order by reason",
      [TENANT],
    );
    assert.deepEqual(
      rejected.rows.map((r) => [r.stream, r.reason.replace(/ \(import of .*\)$/, "")]),
      [
        ["import", "missing or empty id"],
        ["import", "missing or unparsable createdDateTime"],
        ["import", "not a JSON object"],
      ],
    );

    const again = await importFiles(files, deps(db));
    assert.equal(again.totals.inserted, 0, "re-importing inserts nothing");
    assert.equal(again.totals.updated, 0);
    assert.equal(again.totals.unchanged, 25);
    assert.equal((await rows(db)).length, 24);
    const rejectedAgain = await db.pool.query<{ n: number; seen: number }>(
      "select count(*)::int as n, min(times_seen) as seen from rejected_events",
    );
    assert.deepEqual(rejectedAgain.rows[0], { n: 3, seen: 2 });
  });

  it("loads Graph pages, arrays and JSON lines, each event in its stream, audits in directory_audits", async () => {
    const db = await fresh();
    const interactive = Array.from({ length: 30 }, (_, i) => makeSignIn(i + 1));
    const nonInteractive = Array.from({ length: 20 }, (_, i) => makeSignIn(100 + i, {}, { interactive: false }));
    const v1 = interactive.slice(0, 5).map((e) => {
      const { signInEventTypes: _types, userAgent: _ua, ...rest } = e;
      return rest;
    });
    const audits = Array.from({ length: 8 }, (_, i) => makeDirectoryAudit(i + 1));
    const pageFile = await tmpFile(
      "graph-page.json",
      JSON.stringify({
        "@odata.context": "https://graph.microsoft.com/beta/$metadata#auditLogs/signIns",
        value: [...interactive.slice(5, 20), ...nonInteractive.slice(0, 10)],
        "@odata.nextLink": "https://graph.microsoft.com/beta/auditLogs/signIns?$skiptoken=abc",
      }),
    );
    const arrayFile = await tmpFile("graph-array.json", JSON.stringify([...interactive.slice(20), ...v1], null, 2));
    const linesFile = await tmpFile(
      "graph.jsonl",
      [...nonInteractive.slice(10), { id: "no-time" }].map((e) => JSON.stringify(e)).join("\n") + "\n",
    );
    const auditFile = await tmpFile("audits.jsonl", audits.map((e) => JSON.stringify(e)).join("\r\n"));
    const summary = await importFiles([pageFile, arrayFile, linesFile, auditFile], deps(db, { batchSize: 7 }));
    assert.equal(summary.failed, 0, JSON.stringify(summary.files));
    assert.deepEqual(
      summary.files.map((f) => [f.shape, f.container, f.inserted, f.rejected]),
      [
        [SHAPE_LABELS.graphSignIn, "1 page", 25, 0],
        [SHAPE_LABELS.graphSignIn, "JSON array", 15, 0],
        [SHAPE_LABELS.graphSignIn, "JSON lines (11 events)", 10, 1],
        [SHAPE_LABELS.graphDirectoryAudit, "JSON lines (8 events)", 8, 0],
      ],
    );
    const streams = await db.pool.query<{ stream: string; n: number }>(
      "select stream, count(*)::int as n from sign_ins group by 1 order by 1",
    );
    assert.deepEqual(streams.rows, [
      { stream: "interactiveUser", n: 30 },
      { stream: "nonInteractiveUser", n: 20 },
    ]);
    const storedAudits = await rows(db, "directory_audits");
    assert.equal(storedAudits.length, 8);
    assert.ok(storedAudits.every((r) => r.stream === "directoryAudits"));
    const byId = new Map([...interactive, ...nonInteractive, ...v1].map((e) => [e.id, e]));
    for (const r of await rows(db)) {
      assert.deepEqual(r.raw, byId.get(r.id), "raw is the event as given");
    }
    const again = await importFiles([pageFile, arrayFile, linesFile, auditFile], deps(db));
    assert.equal(again.totals.inserted + again.totals.updated, 0);
  });

  it("reports a file that is not an event export and goes on with the others (exit 65)", async () => {
    const db = await fresh();
    const good = await tmpFile("good.jsonl", `${JSON.stringify(makeSignIn(7))}\n`);
    const html = await tmpFile("proxy.html", "<!DOCTYPE html><html><body>Sign in to your network</body></html>");
    const users = await tmpFile(
      "users.json",
      JSON.stringify({
        value: [
          { id: "u1", displayName: "Adele" },
          { id: "u2", displayName: "Lee" },
        ],
      }),
    );
    const truncated = await tmpFile(
      "truncated.json",
      JSON.stringify({ value: [makeSignIn(8), makeSignIn(9)] }).slice(0, 900),
    );
    const binary = await tmpFile("archive.json", Buffer.from([0x7b, 0xc3, 0x28, 0xff, 0x22]));
    const missing = path.join(tmpDir(), "does-not-exist.json");
    const good2 = await tmpFile("good2.json", JSON.stringify([makeSignIn(10)]));
    const out = collect();
    const code = await importCommand([good, html, users, truncated, binary, missing, good2], {
      pool: db.pool,
      log: silentLog,
      tenants: [TENANT],
      out: out.stream,
      now: () => NOW,
    });
    assert.equal(code, EXIT.data);
    const text = out.text();
    assert.match(text, /good\.jsonl: Microsoft Graph signIn, JSON lines \(1 events\): read 1, inserted 1/);
    assert.match(text, /proxy\.html: FAILED: not valid JSON: expected a JSON object or array, found "<!DOCTYPE/);
    assert.match(text, /users\.json: FAILED: not an event export: .*nothing stored/);
    assert.match(text, /truncated\.json: FAILED: not valid JSON: unexpected end of text/);
    assert.match(text, /archive\.json: FAILED: not UTF-8 or UTF-16 text/);
    assert.match(text, /does-not-exist\.json: FAILED: cannot read the file \(ENOENT/);
    assert.match(text, /good2\.json: Microsoft Graph signIn, JSON array: read 1, inserted 1/);
    assert.match(text, /7 file\(s\), .*inserted 2.*; 5 file\(s\) failed/);
    assert.equal((await rows(db)).length, 2);
    assert.equal((await db.pool.query("select 1 from rejected_events")).rowCount, 0, "a foreign file leaves nothing");
  });

  it("parses its flags: tenant choice, help, usage errors", async () => {
    const db = await fresh();
    const ctx = (tenants: string[]) => {
      const out = collect();
      return { out, ctx: { pool: db.pool, log: silentLog, tenants, out: out.stream, now: () => NOW } };
    };
    const help = ctx([TENANT]);
    assert.equal(await importCommand(["--help"], help.ctx), EXIT.ok);
    assert.match(help.out.text(), /Usage: node src\/cli\.ts import/);
    assert.equal(await importCommand([], ctx([TENANT]).ctx), EXIT.usage);
    const several = ctx([TENANT, OTHER]);
    assert.equal(await importCommand(["x.json"], several.ctx), EXIT.usage);
    assert.match(several.out.text(), /2 tenants are configured: pass --tenant/);
    const unknown = ctx([TENANT]);
    assert.equal(await importCommand(["--tenant", OTHER, "x.json"], unknown.ctx), EXIT.usage);
    assert.match(unknown.out.text(), /not a configured tenant/);
    assert.equal(await importCommand(["--bogus", "x.json"], ctx([TENANT]).ctx), EXIT.usage);
    const file = await tmpFile("one.jsonl", JSON.stringify(makeSignIn(11)));
    assert.equal(await importCommand(["--tenant", OTHER, file], ctx([TENANT, OTHER]).ctx), EXIT.ok);
    assert.deepEqual(
      (await rows(db)).map((r) => r.tenant_id),
      [OTHER],
    );

    assert.equal(await exportCommand(["--help"], ctx([TENANT]).ctx), EXIT.ok);
    assert.equal(await exportCommand([], ctx([TENANT]).ctx), EXIT.usage, "--from is required");
    assert.equal(await exportCommand(["--from", "yesterday"], ctx([TENANT]).ctx), EXIT.usage);
    assert.equal(await exportCommand(["--from", "7d", "--format", "csv"], ctx([TENANT]).ctx), EXIT.usage);
    assert.equal(await exportCommand(["--from", "7d", "--stream", "all"], ctx([TENANT]).ctx), EXIT.usage);
    assert.equal(await exportCommand(["--from", "7d", "--to", "8d"], ctx([TENANT]).ctx), EXIT.usage);
    assert.equal(await exportCommand(["--from", "7d"], ctx([TENANT, OTHER]).ctx), EXIT.usage);
    assert.equal(parseTime("7d", NOW)?.toISOString(), "2026-11-21T12:00:00.000Z");
    assert.equal(parseTime("2025-03-01T00:00:00+01:00", NOW)?.toISOString(), "2025-02-28T23:00:00.000Z");
    assert.equal(parseTime("2025-03-01", NOW)?.toISOString(), "2025-03-01T00:00:00.000Z");
    assert.equal(parseTime("March 1", NOW), undefined);
  });

  it("streams a large JSON-lines file (20k events): batches are stored while the file is still being written", async () => {
    const db = await fresh();
    const fifo = path.join(tmpDir(), "big.jsonl");
    execFileSync("mkfifo", [fifo]);
    const total = 20_000;
    const base = Date.parse("2025-01-15T00:00:00Z");
    const line = (i: number): string =>
      JSON.stringify({
        id: `big-${i}`,
        createdDateTime: new Date(base + i * 1000).toISOString(),
        userPrincipalName: `user${i % 500}@example.com`,
        appDisplayName: "Office 365 Exchange Online",
        ipAddress: `203.0.113.${i % 250}`,
        location: { city: "Leeds", state: "England", countryOrRegion: "GB" },
        status: { errorCode: i % 10 === 0 ? 50126 : 0, failureReason: "Other." },
        signInEventTypes: ["interactiveUser"],
      }) + "\n";
    let storedWhileWriting = -1;
    const writer = (async () => {
      const out = createWriteStream(fifo);
      const writeLines = async (from: number, to: number): Promise<void> => {
        for (let i = from; i < to; i += 500) {
          let chunk = "";
          for (let j = i; j < Math.min(to, i + 500); j++) {
            chunk += line(j);
          }
          if (!out.write(chunk)) {
            await new Promise<void>((resolve) => out.once("drain", () => resolve()));
          }
        }
      };
      await writeLines(0, 4_000);
      // Hold the rest back until the importer has committed something: it must not wait for the end of the file.
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const n = (await db.pool.query<{ n: number }>("select count(*)::int as n from sign_ins")).rows[0]?.n ?? 0;
        if (n > 0) {
          storedWhileWriting = n;
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      await writeLines(4_000, total);
      await new Promise<void>((resolve) => out.end(resolve));
    })();
    const [summary] = await Promise.all([importFiles([fifo], deps(db)), writer]);
    assert.equal(summary.failed, 0, JSON.stringify(summary.files));
    assert.equal(summary.totals.inserted, total);
    // The importer committed batches while most of the file did not exist yet: it streams (a reader that loads the
    // whole file first would only store after the writer closed it, and this would time out above).
    assert.ok(storedWhileWriting > 0 && storedWhileWriting <= 4_000, `stored ${storedWhileWriting} before the end`);
    const count = await db.pool.query<{ n: number }>("select count(*)::int as n from sign_ins");
    assert.equal(count.rows[0]?.n, total);
  });
});

describe("export", () => {
  let source: TestDatabase;
  before(async () => {
    source = await fresh();
    await importFiles(await legacyFiles(), deps(source));
    const now = Date.now();
    const recent = [
      ...Array.from({ length: 1200 }, (_, i) => makeSignIn(i + 1, { id: `i-${i}` })),
      ...Array.from({ length: 300 }, (_, i) => makeSignIn(5000 + i, { id: `n-${i}` }, { interactive: false })),
    ].map((e, i) => ({ ...e, createdDateTime: new Date(now - 86_400_000 + i * 1000).toISOString() }));
    const audits = Array.from({ length: 40 }, (_, i) => makeDirectoryAudit(i + 1, { id: `a-${i}` }));
    await importFiles(
      [
        await tmpFile("recent.jsonl", recent.map((e) => JSON.stringify(e)).join("\n")),
        await tmpFile("audits.json", JSON.stringify({ value: audits })),
      ],
      deps(source),
    );
    await importFiles([await tmpFile("other.jsonl", JSON.stringify(makeSignIn(9, { id: "other-tenant" })))], {
      ...deps(source),
      tenantId: OTHER,
    });
  });

  const all = { from: new Date("2001-01-01T00:00:00Z"), to: new Date(Date.now() + 86_400_000) };

  it("writes JSON lines oldest first, only the tenant, stream and range asked for", async () => {
    const out = collect();
    const result = await exportEvents({
      pool: source.pool,
      tenantId: TENANT,
      ...all,
      format: "jsonl",
      out: out.stream,
    });
    const lines = out.text().trimEnd().split("\n");
    assert.equal(result.events, 24 + 1500);
    assert.equal(lines.length, result.events);
    const events = lines.map((l) => JSON.parse(l) as { id: string; createdDateTime: string });
    const times = events.map((e) => Date.parse(e.createdDateTime));
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
    );
    assert.ok(!events.some((e) => e.id === "other-tenant"));

    const onlyNon = collect();
    const r2 = await exportEvents({
      pool: source.pool,
      tenantId: TENANT,
      ...all,
      stream: "nonInteractiveUser",
      format: "jsonl",
      out: onlyNon.stream,
    });
    assert.equal(r2.events, 300);
    const legacyOnly = collect();
    const r3 = await exportEvents({
      pool: source.pool,
      tenantId: TENANT,
      from: new Date("2016-09-01T00:00:00Z"),
      to: new Date("2016-09-01T07:00:00Z"),
      format: "jsonl",
      out: legacyOnly.stream,
    });
    assert.ok(r3.events > 5 && r3.events < 24, "from inclusive, to exclusive");
    assert.ok(
      legacyOnly
        .text()
        .split("\n")
        .filter(Boolean)
        .every((l) => JSON.parse(l).signinDateTime < "2016-09-01T07"),
    );
  });

  it("writes Graph pages, one per line, with at most --page-size events", async () => {
    const out = collect();
    const code = await exportCommand(
      [
        "--from",
        "2001-01-01T00:00:00Z",
        "--format",
        "graph-pages",
        "--page-size",
        "500",
        "--stream",
        "interactiveUser",
      ],
      { pool: source.pool, log: silentLog, tenants: [TENANT], out: out.stream },
    );
    assert.equal(code, EXIT.ok);
    const pages = out
      .text()
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { "@odata.context": string; value: unknown[] });
    assert.deepEqual(
      pages.map((p) => p.value.length),
      [500, 500, 224],
    );
    assert.ok(
      pages.every((p) => p["@odata.context"] === "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns"),
    );
  });

  for (const format of ["jsonl", "graph-pages"] as const) {
    it(`round-trips through ${format} into a fresh database: the same rows, raw equal`, async () => {
      const target = await fresh();
      const files: string[] = [];
      for (const stream of [undefined, "directoryAudits"]) {
        const file = path.join(tmpDir(), `export-${format}-${stream ?? "signins"}.out`);
        const out = createWriteStream(file);
        await exportEvents({
          pool: source.pool,
          tenantId: TENANT,
          ...all,
          format,
          out,
          pageSize: 333,
          ...(stream ? { stream } : {}),
        });
        await new Promise<void>((resolve) => out.end(resolve));
        files.push(file);
      }
      const summary = await importFiles(files, deps(target));
      assert.equal(summary.failed, 0, JSON.stringify(summary.files));
      assert.equal(summary.totals.rejected, 0);
      for (const table of ["sign_ins", "directory_audits"]) {
        const want = (await rows(source, table)).filter((r) => r.tenant_id === TENANT);
        const got = await rows(target, table);
        assert.equal(got.length, want.length);
        assert.deepEqual(got, want, `${table}: same ids, times, streams and raw`);
      }
    });
  }

  it("stops with an error when the output fails", async () => {
    const out = new PassThrough({ highWaterMark: 16 });
    out.on("error", () => undefined);
    setImmediate(() => out.destroy(new Error("EPIPE")));
    await assert.rejects(
      exportEvents({ pool: source.pool, ...all, format: "jsonl", out, pageSize: 10 }),
      /EPIPE|closed|destroyed/,
    );
    const idle = await source.pool.query<{ n: number }>(
      "select count(*)::int as n from pg_stat_activity where datname = current_database() and state like 'idle in transaction%'",
    );
    assert.equal(idle.rows[0]?.n, 0, "the cursor's transaction was closed");
  });
});
