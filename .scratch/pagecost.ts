// Before/after cost of a normal page: 100 pages of 1000 simulator events, pageEvents + one upsert transaction each.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { pino } from "pino";
const [root, baseUrl, mode] = process.argv.slice(2) as [string, string, string];
const { startSimulator } = await import(`${root}/src/simulator/server.ts`);
const { pageEvents } = await import(`${root}/src/ingest/events.ts`);
const { withTransaction } = await import(`${root}/src/store/db.ts`);
const { migrate } = await import(`${root}/src/store/migrate.ts`);
const { ensurePartitions, upsertSignIns } = await import(`${root}/src/store/signins.ts`);
const sim = await startSimulator({ seed: 11, users: 2000, signInsPerUserPerDay: 30, historyDays: 2, clock: () => new Date("2026-11-20T12:00:00Z") });
const all = sim.visibleEvents().filter((e: any) => typeof e.id === "string").slice(0, 100_000);
await sim.close();
const pages: string[] = [];
for (let i = 0; i < 100; i++) {
  pages.push(JSON.stringify({ "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns", value: all.slice(i * 1000, (i + 1) * 1000) }));
}
const bytes = pages.reduce((a, p) => a + p.length, 0);
const name = `pagecost_${randomBytes(4).toString("hex")}`;
const admin = new pg.Client({ connectionString: baseUrl }); await admin.connect(); await admin.query(`create database ${name}`);
const u = new URL(baseUrl); u.pathname = `/${name}`;
await migrate(u.toString(), pino({ level: "silent" }));
const pool = new pg.Pool({ connectionString: u.toString(), max: 2 });
await withTransaction(pool, (c: any) => ensurePartitions(c, new Date("2026-11-01Z"), new Date("2026-11-30Z")));
let jsMs = 0, totalMs = 0;
for (const text of pages) {
  const t0 = performance.now();
  const value = JSON.parse(text).value;
  const t1 = performance.now();
  const { events } = pageEvents(text, value);
  const t2 = performance.now();
  await withTransaction(pool, (c: any) => upsertSignIns(c, "bench", "interactiveUser", events, new Date()));
  const t3 = performance.now();
  jsMs += t2 - t1; totalMs += t3 - t1;
}
// Re-run: every event unchanged (the overlap re-read, the commonest page of all).
let againMs = 0;
for (const text of pages) {
  const t1 = performance.now();
  const { events } = pageEvents(text, JSON.parse(text).value);
  await withTransaction(pool, (c: any) => upsertSignIns(c, "bench", "interactiveUser", events, new Date()));
  againMs += performance.now() - t1;
}
console.log(JSON.stringify({ mode, pages: pages.length, mbytes: +(bytes / 1e6).toFixed(1), insert_ms_per_page: +(totalMs / 100).toFixed(1), js_classify_ms_per_page: +(jsMs / 100).toFixed(2), unchanged_ms_per_page: +(againMs / 100).toFixed(1) }));
await pool.end(); await admin.query(`drop database ${name} with (force)`); await admin.end();
