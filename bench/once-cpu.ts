// One `node src/cli.ts <command>` catching up N real-sized sign-ins against the bench's simulator, repeated: its wall
// time, peak RSS, and the CPU the simulator (this process), PostgreSQL (every postgres process on this machine, from
// /proc, exited backends through the postmaster's children times) and the whole machine used meanwhile. The figures
// docs/benchmarks.md marks "by hand" (the CPU split, the six-run RSS medians of changes 13 and 14) come from it.
//
//   ROUNDS=6 node bench/once-cpu.ts [N=10000] ["once"|"run"|"backfill --from … --to …"|"import"] ['{"EXTRA_ENV":"value"}']
//   ("import": the same events from a JSON Lines file, `import --tenant … <file>`)
//   PROBE_LOG=1 …   also sets log_min_duration_statement = 0 on each measured database (the server log)
import { execSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startSimulator } from "../src/simulator/server.ts";
import { DAY, HOUR } from "../src/time.ts";
import { Databases, withClient } from "./databases.ts";
import { cloneEvents, templateEvents } from "./events.ts";
import { catchUpEnv, runCli } from "./processes.ts";

const n = Number(process.argv[2] ?? 10000);
const args = (process.argv[3] ?? "once").split(" ");
const extra = JSON.parse(process.argv[4] ?? "{}");
const TENANT = "00000000-0000-4000-8000-0000000000be";
const dbs = new Databases(
  process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
  false,
);
await dbs.init();
const templates = await templateEvents(false);
if (process.env.PROBE_NAMES === "local") {
  const names = ["山田 太郎", "Łukasz Wójcik", "Иван Петров", "김민준", "Σοφία Παπαδοπούλου", "שרה כהן", "Zoë Brontë"];
  templates.forEach((t, i) => {
    t.userDisplayName = names[i % names.length];
    (t.location as { city: string }).city = ["東京", "Kraków", "Москва", "서울", "Αθήνα", "תל אביב", "São Paulo"][
      i % 7
    ]!;
  });
}
const now = Date.now();
const spacingMs = (2 * DAY) / n;
const endMs = now - HOUR;
const events = cloneEvents(templates, n, { spacingMs, endMs, newest: n, gapMs: HOUR });
const sim = await startSimulator({ generate: false, tenants: [TENANT], cacheEvents: n + 1000, seed: 9 });
sim.addEvents(events, { tenantId: TENANT, visibleAt: new Date(now - 2 * HOUR) });
const work = await mkdtemp(path.join(tmpdir(), "probe-"));
await runCli(["migrate"], { DATABASE_URL: dbs.templateUrl, LOG_LEVEL: "warn" }, work);
const lookbackMs = now - (endMs - (n - 1) * spacingMs) + HOUR / 2;
if (args[0] === "import") {
  const file = path.join(work, "events.jsonl");
  await writeFile(file, events.map((e) => JSON.stringify(e)).join("\n") + "\n");
  args.push("--tenant", TENANT, file);
}
const pgCpu = () => {
  const out = execSync("for p in $(pgrep -u postgres); do cat /proc/$p/stat 2>/dev/null; done; true").toString();
  let t = 0;
  for (const line of out.split("\n")) {
    const f = line.split(") ")[1]?.split(" ");
    if (f) {
      t += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    }
  }
  return t / 100;
};
const sysCpu = () => {
  const f = execSync("head -1 /proc/stat").toString().trim().split(/\s+/).slice(1).map(Number);
  return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]!) / 100;
};
for (let i = 0; i < Number(process.env.ROUNDS ?? 2); i++) {
  const url = await dbs.fresh("probe");
  if (process.env.PROBE_LOG) {
    const name = new URL(url).pathname.slice(1);
    await withClient(url, (c) => c.query(`alter database ${name} set log_min_duration_statement = 0`));
  }
  const t0 = sysCpu();
  const p0 = pgCpu();
  const s0 = process.cpuUsage();
  // `run` never exits by itself: it gets SIGTERM once every event is stored.
  const stored = async () =>
    withClient(url, async (c) => Number((await c.query("select count(*) as n from sign_ins")).rows[0]?.n) >= n);
  const r = await runCli(
    args,
    { ...catchUpEnv(sim, url, lookbackMs, { AZURE_TENANT_ID: TENANT }), ...extra },
    work,
    args[0] === "run" ? stored : undefined,
  );
  const s1 = process.cpuUsage(s0);
  const p1 = pgCpu();
  const t1 = sysCpu();
  console.log(
    JSON.stringify({
      code: r.code,
      s: +(r.ms / 1000).toFixed(2),
      eps: Math.round(n / (r.ms / 1000)),
      rssMb: Math.round(r.peakRssMb),
      simCpu: +((s1.user + s1.system) / 1e6).toFixed(2),
      pgCpu: +(p1 - p0).toFixed(2),
      totalCpu: +(t1 - t0).toFixed(2),
      err: r.stderr.slice(-300),
    }),
  );
  await dbs.drop(url);
}
await sim.close();
await dbs.dropAll();
await rm(work, { recursive: true, force: true });
process.exit(0);
