// Every panel of the provisioned Grafana dashboard runs, as the read-only role, against a database filled by the
// simulator: Grafana's macros are expanded here the way its PostgreSQL data source expands them.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";

import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import { type Fixture, loadSimulatedSignIns } from "./helpers/views-fixture.ts";

interface Target {
  refId: string;
  rawSql: string;
  format: string;
  datasource: { uid: string };
}
interface Panel {
  id: number;
  title: string;
  type: string;
  targets?: Target[];
  panels?: Panel[];
  datasource?: { uid: string };
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; query: string; datasource: { uid: string } }> };
}

const dashboard = JSON.parse(
  readFileSync(new URL("../grafana/dashboards/signin-soc.json", import.meta.url), "utf8"),
) as Dashboard;
const datasources = readFileSync(new URL("../grafana/provisioning/datasources/signin.yaml", import.meta.url), "utf8");
const panels = (list: Panel[]): Panel[] => list.flatMap((p) => [p, ...panels(p.panels ?? [])]);

let db: TestDatabase;
let fx: Fixture;
before(async () => {
  db = await createTestDatabase();
  fx = await loadSimulatedSignIns(db.pool);
  await db.pool.query(
    `insert into checkpoints (tenant_id, stream, position, updated_at) values ($1, 'interactiveUser', $2, $2)`,
    [fx.tenantId, fx.to],
  );
  await db.pool.query(
    `insert into cycles (tenant_id, stream, started_at, finished_at, outcome) values ($1, 'interactiveUser', $2, $2, 'success')`,
    [fx.tenantId, fx.to],
  );
});
after(() => db.drop());

const INTERVALS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** Expands the Grafana PostgreSQL macros and variables the dashboard uses (Grafana's own expansions). */
export function expandMacros(sql: string, from: Date, to: Date, variables: Record<string, string[]>): string {
  const quote = (d: Date) => `'${d.toISOString()}'`;
  let out = sql
    .replace(/\$__timeFilter\(([^)]+)\)/g, (_, col: string) => `${col.trim()} BETWEEN ${quote(from)} AND ${quote(to)}`)
    .replace(/\$__timeGroupAlias\(([^,]+),\s*'?(\d+)([smhd])'?\)/g, (_, col: string, n: string, unit: string) => {
      const seconds = Number(n) * (INTERVALS[unit] ?? NaN);
      return `floor(extract(epoch from ${col.trim()})/${seconds})*${seconds} AS "time"`;
    })
    .replace(/\$__timeFrom\(\)/g, quote(from))
    .replace(/\$__timeTo\(\)/g, quote(to));
  for (const [name, values] of Object.entries(variables)) {
    out = out.replaceAll(`$${name}`, values.map((v) => `'${v.replaceAll("'", "''")}'`).join(","));
  }
  assert.doesNotMatch(out, /\$\w/, `unexpanded macro or variable in: ${out}`);
  return out;
}

async function asReader<T>(
  work: (query: (sql: string) => Promise<Array<Record<string, unknown>>>) => Promise<T>,
): Promise<T> {
  const client = await db.pool.connect();
  try {
    await client.query("set role signin_reader");
    return await work(async (sql) => (await client.query(sql)).rows);
  } finally {
    await client.query("reset role");
    client.release();
  }
}

test("the dashboard uses the provisioned read-only data source everywhere", () => {
  assert.match(datasources, /uid: signin-postgres/);
  assert.match(datasources, /user: grafana/);
  const all = panels(dashboard.panels);
  assert.ok(all.length >= 12);
  for (const p of all) {
    for (const t of p.targets ?? []) {
      assert.equal(t.datasource.uid, "signin-postgres", p.title);
    }
  }
  const types = new Set(all.map((p) => p.type));
  for (const type of ["timeseries", "geomap", "table", "bargauge"]) {
    assert.ok(types.has(type), type);
  }
});

test("the tenant variable's query lists the tenants", async () => {
  const variable = dashboard.templating.list.find((v) => v.name === "tenant");
  assert.ok(variable);
  const rows = await asReader((q) => q(variable.query));
  assert.deepEqual(
    rows.map((r) => r.tenant_id),
    [fx.tenantId],
  );
});

const EXPECT_ROWS = new Set([
  "Sign-ins per hour",
  "Failure rate",
  "Data freshness",
  "Top failure reasons",
  "Sign-in locations",
  "Legacy authentication by user and protocol",
  "Conditional Access outcomes per policy",
  "MFA outcomes by method",
  "Risky sign-ins",
  "Password-spray candidates",
  "Impossible-travel candidates",
  "First sign-in from a new country",
  "Service-principal and managed-identity activity",
  "MFA denials and fatigue",
  "Password spray (sliding 20 minutes)",
  "Sign-in attempts from a new country",
  "Device-code sign-ins",
  "Sign-ins to disabled or locked accounts",
  "Success after many failures",
]);

for (const panel of panels(dashboard.panels).filter((p) => (p.targets ?? []).length > 0)) {
  test(`panel "${panel.title}" runs as signin_reader for the last 7 days and the last 24 hours`, async () => {
    for (const target of panel.targets ?? []) {
      for (const hours of [7 * 24, 24]) {
        const from = new Date(fx.to.getTime() - hours * 3_600_000);
        const sql = expandMacros(target.rawSql, from, fx.to, { tenant: [fx.tenantId] });
        const rows = await asReader((q) => q(sql));
        if (hours > 24 && EXPECT_ROWS.has(panel.title)) {
          assert.ok(rows.length > 0, `${panel.title} returned no rows:\n${sql}`);
        }
        if (target.format === "time_series") {
          assert.ok(
            rows.every((r) => typeof r.time === "number" || typeof r.time === "string"),
            "a time column",
          );
        }
      }
    }
  });
}

test("the map panel returns coordinates and a count per place", async () => {
  const map = panels(dashboard.panels).find((p) => p.type === "geomap");
  const sql = expandMacros(map?.targets?.[0]?.rawSql ?? "", fx.from, fx.to, { tenant: [fx.tenantId] });
  const rows = await asReader((q) => q(sql));
  assert.ok(rows.length > 10);
  for (const r of rows) {
    assert.equal(typeof r.latitude, "number");
    assert.equal(typeof r.longitude, "number");
    assert.ok(Number(r.sign_ins) > 0);
  }
  const total = rows.reduce((a, r) => a + Number(r.sign_ins), 0);
  const located = fx.events.filter((e) => {
    const g = (e.location as { geoCoordinates?: { latitude?: unknown } } | undefined)?.geoCoordinates;
    return typeof g?.latitude === "number";
  }).length;
  assert.equal(total, located);
});

test("the macro expander matches Grafana's expansions", () => {
  const from = new Date("2026-03-01T00:00:00Z");
  const to = new Date("2026-03-02T00:00:00Z");
  assert.equal(
    expandMacros(
      "select $__timeGroupAlias(hour, 1h) where $__timeFilter(hour) and t in ($tenant) and d >= $__timeFrom()",
      from,
      to,
      {
        tenant: ["a", "b'c"],
      },
    ),
    `select floor(extract(epoch from hour)/3600)*3600 AS "time" where hour BETWEEN '2026-03-01T00:00:00.000Z' AND '2026-03-02T00:00:00.000Z' and t in ('a','b''c') and d >= '2026-03-01T00:00:00.000Z'`,
  );
});
