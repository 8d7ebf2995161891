// Directory audits: the simulator's /auditLogs/directoryAudits (activityDateTime, paging, faults), and the daemon's
// directoryAudits stream storing them in directory_audits exactly.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { generateAuditHour } from "../src/simulator/audits.ts";
import { crawl, getToken, graphGet } from "../src/simulator/client.ts";
import { HOUR_MS } from "../src/simulator/generate.ts";
import { makeDirectoryAudit } from "../src/simulator/index.ts";
import { type Simulator, startSimulator } from "../src/simulator/server.ts";
import { readCheckpoint } from "../src/store/checkpoints.ts";
import { MINUTE } from "../src/time.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/db.ts";
import { ingestHarness } from "./helpers/ingest.ts";

const AUDITS = "/v1.0/auditLogs/directoryAudits";
const q = (filter: string, extra = ""): string => `${AUDITS}?$filter=${encodeURIComponent(filter)}${extra}`;

describe("simulator: GET /auditLogs/directoryAudits", () => {
  let sim: Simulator;
  let token: string;
  before(async () => {
    sim = await startSimulator({ seed: 3, users: 30, historyDays: 3 });
    token = await getToken(sim);
  });
  after(() => sim.close());

  it("serves deterministic, Graph-shaped audit events newest first", async () => {
    const r = await graphGet(sim, `${AUDITS}?$top=50`, token);
    assert.equal(r.status, 200);
    assert.match(String(r.json["@odata.context"]), /\/v1\.0\/\$metadata#auditLogs\/directoryAudits$/);
    const value = r.json.value as Array<Record<string, unknown>>;
    assert.equal(value.length, 50);
    assert.ok(r.json["@odata.nextLink"]);
    const times = value.map((e) => Date.parse(String(e.activityDateTime)));
    assert.deepEqual(
      times,
      [...times].sort((a, b) => b - a),
      "newest first",
    );
    for (const e of value) {
      for (const key of [
        "id",
        "category",
        "correlationId",
        "result",
        "resultReason",
        "activityDisplayName",
        "activityDateTime",
        "loggedByService",
        "operationType",
        "initiatedBy",
        "targetResources",
        "additionalDetails",
      ]) {
        assert.ok(key in e, `${key} in ${JSON.stringify(e)}`);
      }
      assert.ok(!("createdDateTime" in e));
      const by = e.initiatedBy as { user: Record<string, unknown> | null; app: Record<string, unknown> | null };
      assert.ok(by.user !== null || by.app !== null, "initiated by a user or an app");
      assert.ok(Array.isArray(e.targetResources) && e.targetResources.length > 0);
    }
    // What three days hold, from the generator over fixed dates: the simulator's own window ends now, and on some
    // days its few hundred audits happened to hold no failure (a Monday 01:00 UTC run failed this way).
    const cfg = { seed: 3, users: 30, signInsPerUserPerDay: 20, arrivalLatency: false as const, republishRate: 0 };
    const firstHour = Date.parse("2026-03-02T00:00:00Z") / HOUR_MS;
    const all = Array.from({ length: 72 }, (_, h) => generateAuditHour(cfg, sim.tenantId, firstHour + h)).flatMap(
      (hour) => hour.map((e) => e.obj),
    );
    const categories = new Set(all.map((e) => e.category));
    for (const c of ["UserManagement", "GroupManagement", "ApplicationManagement", "RoleManagement", "Device"]) {
      assert.ok(categories.has(c), `category ${c} appears over three days`);
    }
    assert.ok(
      all.some((e) => e.result === "failure"),
      "some audits failed",
    );
    assert.ok(all.length > 100 && all.length < 1000, `a few per user per day (${all.length})`);
    // Same seed, same data.
    const again = await startSimulator({
      seed: 3,
      users: 30,
      historyDays: 3,
      clock: () => sim.now(),
    });
    try {
      const visible = sim.visibleAudits();
      const ids = new Set(again.visibleAudits().map((e) => e.id));
      assert.ok(visible.filter((e) => ids.has(e.id)).length > visible.length * 0.95);
    } finally {
      await again.close();
    }
  });

  it("filters on activityDateTime (ge/le/gt/lt/eq), pages with opaque skiptokens, caps $top at 1000", async () => {
    const now = sim.now().getTime();
    const from = new Date(now - 36 * 60 * MINUTE).toISOString().replace(/\.\d+Z$/, "Z");
    const to = new Date(now - 12 * 60 * MINUTE).toISOString().replace(/\.\d+Z$/, "Z");
    const expected = sim
      .visibleAudits()
      .filter((e) => {
        const t = Date.parse(String(e.activityDateTime));
        return t >= Date.parse(from) && t <= Date.parse(to);
      })
      .map((e) => e.id);
    assert.ok(expected.length > 20);
    const got = await crawl(sim, q(`activityDateTime ge ${from} and activityDateTime le ${to}`, "&$top=7"), token);
    assert.deepEqual(
      got.items.map((e) => e.id),
      expected,
    );
    assert.ok(got.pages.length > 2 && got.pages.every((n) => n <= 7));

    const one = expected[3];
    const at = sim.visibleAudits().find((e) => e.id === one)?.activityDateTime as string;
    const eq = await graphGet(sim, q(`activityDateTime eq ${at}`), token);
    assert.ok((eq.json.value as Array<{ id: string }>).some((e) => e.id === one));
    const gtlt = await graphGet(sim, q(`activityDateTime gt ${from} and activityDateTime lt ${to}`), token);
    assert.equal(gtlt.status, 200);

    const cat = await graphGet(sim, q("category eq 'GroupManagement'", "&$top=20"), token);
    assert.ok((cat.json.value as Array<{ category: string }>).every((e) => e.category === "GroupManagement"));

    const quoted = await graphGet(sim, q(`activityDateTime ge '${from}'`), token);
    assert.equal(quoted.status, 400);
    assert.equal(quoted.json.error.message, "Invalid filter clause");
    const wrongField = await graphGet(sim, q(`createdDateTime ge ${from}`), token);
    assert.equal(wrongField.status, 400);
    const top = await graphGet(sim, `${AUDITS}?$top=1001`, token);
    assert.equal(top.status, 400);
    const deflt = await graphGet(sim, AUDITS, token);
    assert.ok((deflt.json.value as unknown[]).length <= 1000);

    const first = await graphGet(sim, `${AUDITS}?$top=5`, token);
    const link = new URL(String(first.json["@odata.nextLink"]));
    const skiptoken = link.searchParams.get("$skiptoken") ?? "";
    const forged = await graphGet(sim, `${AUDITS}?$top=5&$skiptoken=${skiptoken.slice(0, -2)}xx`, token);
    assert.equal(forged.status, 400);
    const crossResource = await graphGet(sim, `/v1.0/auditLogs/signIns?$top=5&$skiptoken=${skiptoken}`, token);
    assert.equal(crossResource.status, 400, "a directoryAudits skiptoken is not valid for signIns");
  });

  it("requires a token and applies the same faults and modes as signIns", async () => {
    assert.equal((await graphGet(sim, AUDITS)).status, 401);
    sim.setFaults([{ kind: "status", status: 503, match: { path: "directoryAudits" }, times: 1 }]);
    assert.equal((await graphGet(sim, AUDITS, token)).status, 503);
    assert.equal((await graphGet(sim, AUDITS, token)).status, 200);
    sim.setFaults([]);
    sim.setMode("no-permission");
    try {
      const r = await graphGet(sim, AUDITS, token);
      assert.equal(r.status, 403);
      assert.equal(r.json.error.code, "Authorization_RequestDenied");
    } finally {
      sim.setMode("normal");
    }
  });

  it("addAudits adds events the endpoint and visibleAudits show", async () => {
    const s2 = await startSimulator({ generate: false });
    try {
      const at = new Date(s2.now().getTime() - 10 * MINUTE).toISOString();
      s2.addAudits([makeDirectoryAudit(1, { id: "Directory_test_1", activityDateTime: at })]);
      assert.deepEqual(
        s2.visibleAudits().map((e) => e.id),
        ["Directory_test_1"],
      );
      assert.equal(s2.visibleEvents().length, 0, "audits are not sign-ins");
      const tok = await getToken(s2);
      const r = await graphGet(s2, AUDITS, tok);
      assert.deepEqual(
        (r.json.value as Array<{ id: string }>).map((e) => e.id),
        ["Directory_test_1"],
      );
      const signIns = await graphGet(s2, "/v1.0/auditLogs/signIns", tok);
      assert.deepEqual(signIns.json.value, []);
    } finally {
      await s2.close();
    }
  });
});

describe("daemon: the directoryAudits stream", () => {
  let sim: Simulator;
  let db: TestDatabase;
  before(async () => {
    sim = await startSimulator({ seed: 11, users: 40, historyDays: 2, auditsPerUserPerDay: 4 });
    db = await createTestDatabase();
  });
  after(async () => {
    await sim.close();
    await db.drop();
  });

  it("stores exactly the simulator's audit events of the window; a second run inserts nothing", async () => {
    const h = ingestHarness(sim, db, { STREAMS: "directoryAudits", PAGE_SIZE: "25" });
    try {
      const first = await h.run();
      assert.ok(first.windows.length > 0);
      const from = first.windows[0]!.from.getTime();
      const to = first.windows.at(-1)!.to.getTime();
      const expected = sim.visibleAudits().filter((e) => {
        const t = Date.parse(String(e.activityDateTime));
        return t >= from && t <= to;
      });
      assert.ok(expected.length > 50, `a realistic day of audits (${expected.length})`);
      assert.ok(first.pages > 2, "several pages followed");
      assert.equal(first.inserted, expected.length);
      const rows = await db.pool.query<{ id: string; raw: Record<string, unknown>; stream: string }>(
        "select id, raw, stream from directory_audits where tenant_id = $1",
        [sim.tenantId],
      );
      assert.deepEqual(new Set(rows.rows.map((r) => r.id)), new Set(expected.map((e) => e.id)));
      const byId = new Map(expected.map((e) => [e.id, e]));
      for (const row of rows.rows) {
        assert.deepEqual(row.raw, byId.get(row.id), "raw is what Graph sent");
        assert.equal(row.stream, "directoryAudits");
      }
      const signIns = await db.pool.query("select 1 from sign_ins limit 1");
      assert.equal(signIns.rowCount, 0, "no audit lands in sign_ins");
      assert.equal((await readCheckpoint(db.pool, sim.tenantId, "directoryAudits"))?.getTime(), to);

      const second = await h.run();
      assert.equal(second.inserted, 0, "a second run inserts nothing");
      assert.equal(second.updated, 0);

      const typed = await db.pool.query<Record<string, string | null>>(
        `select category, activity_display_name, operation_type, result, logged_by_service, correlation_id,
                initiated_by_user_principal_name, initiated_by_user_id, initiated_by_app_display_name, activity_date_time
         from directory_audits where tenant_id = $1`,
        [sim.tenantId],
      );
      for (const row of typed.rows) {
        assert.ok(row.category && row.activity_display_name && row.operation_type && row.result, JSON.stringify(row));
        assert.ok(row.logged_by_service && row.correlation_id);
        assert.ok(row.initiated_by_user_principal_name || row.initiated_by_app_display_name, JSON.stringify(row));
      }
      assert.ok(typed.rows.some((r) => r.initiated_by_user_principal_name?.includes("@")));
      assert.ok(typed.rows.some((r) => r.initiated_by_app_display_name));
    } finally {
      await h.close();
    }
  });

  it("runAll reads audits next to sign-ins, each into its own table", async () => {
    const db2 = await createTestDatabase();
    const h = ingestHarness(sim, db2, { STREAMS: "interactiveUser,directoryAudits" });
    try {
      const outcomes = await h.ingester.runAll(new AbortController().signal);
      assert.equal(outcomes.length, 2);
      for (const o of outcomes) {
        assert.ok("result" in o && o.result, `${o.target.stream.name} succeeded`);
      }
      const audits = await db2.pool.query<{ n: number }>("select count(*)::int as n from directory_audits");
      const signIns = await db2.pool.query<{ n: number }>("select count(*)::int as n from sign_ins");
      assert.ok(audits.rows[0]!.n > 0 && signIns.rows[0]!.n > 0);
      const crossed = await db2.pool.query("select 1 from sign_ins where stream = 'directoryAudits'");
      assert.equal(crossed.rowCount, 0);
    } finally {
      await h.close();
      await db2.drop();
    }
  });
});
