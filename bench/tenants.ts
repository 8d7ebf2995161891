// Several tenants at once: K simulated tenants of N/K real-sized sign-ins each (over 2 days: every cycle catches
// up), read by `node src/cli.ts once` with TENANTS_FILE at TENANT_CONCURRENCY 1, 2 and 4, then by two replicas
// (`once` twice at the same time, TENANT_CONCURRENCY 2 each) on one database: the leases split the tenants.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { startSimulator } from "../src/simulator/server.ts";
import { DAY, HOUR } from "../src/time.ts";
import { type Databases, withClient } from "./databases.ts";
import { cloneEvents, templateEvents } from "./events.ts";
import { catchUpEnv, runCli, runClis } from "./processes.ts";
import { round, table } from "./report.ts";

export async function tenantsScenario(dbs: Databases, o: { events: number; tenants: number }): Promise<void> {
  const perTenant = Math.floor(o.events / o.tenants);
  const tenants = Array.from(
    { length: o.tenants },
    (_, i) => `00000000-0000-4000-8000-${String(i + 1).padStart(12, "0")}`,
  );
  const templates = await templateEvents(false);
  const now = Date.now();
  const sim = await startSimulator({ generate: false, tenants, cacheEvents: o.events + 1000, seed: 9 });
  const work = await mkdtemp(path.join(tmpdir(), "bench-tenants-"));
  try {
    for (const tenantId of tenants) {
      const events = cloneEvents(templates, perTenant, {
        spacingMs: (2 * DAY) / perTenant,
        endMs: now - HOUR,
        newest: perTenant,
        gapMs: 0,
      });
      sim.addEvents(events, { tenantId, visibleAt: new Date(now - 2 * HOUR) });
    }
    const tenantsFile = path.join(work, "tenants.json");
    await writeFile(tenantsFile, JSON.stringify({ tenants: tenants.map((tenantId) => ({ tenantId })) }));
    const env = (url: string, concurrency: number): Record<string, string> =>
      catchUpEnv(sim, url, 2 * DAY + 2 * HOUR, {
        TENANTS_FILE: tenantsFile,
        TENANT_CONCURRENCY: String(concurrency),
      });
    await runCli(["migrate"], { DATABASE_URL: dbs.templateUrl, LOG_LEVEL: "warn" }, work); // compile cache
    const stored = (url: string) =>
      withClient(
        url,
        async (c) => (await c.query<{ n: number }>("select count(*)::int as n from sign_ins")).rows[0]?.n,
      );
    const rows: Array<Record<string, string | number>> = [];
    for (const concurrency of [1, 2, 4]) {
      const url = await dbs.fresh(`tenants${concurrency}`);
      const run = await runCli(["once"], env(url, concurrency), work);
      const n = (await stored(url)) ?? 0;
      if (run.code !== 0) {
        throw new Error(`once exited ${run.code}: ${run.stderr}`);
      }
      rows.push({
        run: `1 process, TENANT_CONCURRENCY=${concurrency}`,
        events: n,
        seconds: round(run.ms / 1000, 1),
        events_per_s: round((n * 1000) / run.ms),
        peak_rss_mb: round(run.peakRssMb),
        exit_codes: String(run.code),
      });
      await dbs.drop(url);
    }
    const url = await dbs.fresh("replicas");
    const started = performance.now();
    const runs = await runClis(
      [0, 1].map(() => ({ args: ["once"], env: env(url, 2) })),
      work,
    );
    const ms = performance.now() - started;
    const n = (await stored(url)) ?? 0;
    rows.push({
      run: "2 replicas, TENANT_CONCURRENCY=2 each",
      events: n,
      seconds: round(ms / 1000, 1),
      events_per_s: round((n * 1000) / ms),
      peak_rss_mb: runs.map((r) => round(r.peakRssMb)).join(" / "),
      exit_codes: runs.map((r) => r.code).join(" / "),
    });
    await dbs.drop(url);
    process.stdout.write(
      `${o.tenants} tenants × ${perTenant} real-sized sign-ins over 2 days (each cycle catches up in concurrent slices)\n\n` +
        table(rows) +
        "\n\n" +
        "(a replica exits 75 when another live replica held one of its streams: it skipped it, as documented)\n\n",
    );
    process.stdout.write(
      JSON.stringify({ scenario: "tenants", tenants: o.tenants, per_tenant: perTenant, rows }) + "\n",
    );
  } finally {
    await sim.close();
    await rm(work, { recursive: true, force: true });
  }
}
