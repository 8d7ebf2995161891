import { scanPage } from "../src/ingest/jsonb.ts";
import { startSimulator } from "../src/simulator/server.ts";
const sim = await startSimulator({ seed: 11, users: 500, signInsPerUserPerDay: 30, historyDays: 2, clock: () => new Date("2026-11-20T12:00:00Z") });
const all = sim.visibleEvents().filter((e: any) => typeof e.id === "string").slice(0, 20_000);
await sim.close();
const pages: string[] = [];
for (let i = 0; i < 20; i++) pages.push(JSON.stringify({ value: all.slice(i * 1000, (i + 1) * 1000) }));
const p = pages[0]!;
console.log("quotes", p.split('"').length, "backslashes", p.split("\\").length, "commas", p.split(",").length);
for (let r = 0; r < 5; r++) {
  let t = performance.now(); for (const x of pages) scanPage(x); const scan = (performance.now() - t) / 20;
  t = performance.now(); let n = 0; for (const x of pages) { let k = -1; while ((k = x.indexOf('"', k + 1)) !== -1) n++; } const iq = (performance.now() - t) / 20;
  t = performance.now(); for (const x of pages) JSON.parse(x); const parse = (performance.now() - t) / 20;
  console.log({ scan: scan.toFixed(2), indexOfQuotesOnly: iq.toFixed(2), jsonParse: parse.toFixed(2) });
}
