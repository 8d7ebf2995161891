const root = process.argv[2] ?? "/work/wt/poison";
const { startSimulator } = await import(`${root}/src/simulator/server.ts`);
const { pageEvents } = await import(`${root}/src/ingest/events.ts`);
const sim = await startSimulator({ seed: 11, users: 500, signInsPerUserPerDay: 30, historyDays: 2, clock: () => new Date("2026-11-20T12:00:00Z") });
const all = sim.visibleEvents().filter((e: any) => typeof e.id === "string").slice(0, 20_000);
await sim.close();
const pages: string[] = [];
for (let i = 0; i < 20; i++) pages.push(JSON.stringify({ "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns", value: all.slice(i * 1000, (i + 1) * 1000) }));
const values = pages.map((p) => JSON.parse(p).value);
for (let round = 0; round < 3; round++) {
  const t0 = performance.now();
  for (let i = 0; i < pages.length; i++) pageEvents(pages[i], values[i]);
  console.log(root, "pageEvents ms/page", ((performance.now() - t0) / pages.length).toFixed(2), "MB/page", (pages[0]!.length / 1e6).toFixed(1));
}
