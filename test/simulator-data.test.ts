import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import { getToken, graphGet, requestToken } from "../src/simulator/client.ts";
import { makeSignIn, parseSimulateArgs, runSimulatorCli, startSimulator } from "../src/simulator/index.ts";
import type { Simulator } from "../src/simulator/index.ts";

const T0 = Date.parse("2025-03-04T12:00:00Z");
const LIST = "/v1.0/auditLogs/signIns";

describe("faults", () => {
  let sim: Simulator;
  let token: string;
  before(async () => {
    sim = await startSimulator({ generate: false });
    sim.addEvents(Array.from({ length: 30 }, (_, i) => makeSignIn(i, { id: `e${String(i).padStart(2, "0")}` })));
    token = await getToken(sim);
  });
  after(() => sim.close());
  const get = (path = `${LIST}?$top=10`, init: RequestInit = {}) => graphGet(sim, path, token, init);

  it("status faults by request number, with Retry-After and a Graph body", async () => {
    sim.setFaults([{ match: { from: 1, to: 1_000_000 }, kind: "status", status: 503, retryAfter: "7", times: 1 }]);
    const r = await get();
    assert.equal(r.status, 503);
    assert.equal(r.headers.get("retry-after"), "7");
    assert.equal(r.json.error.code, "ServiceUnavailable");
    assert.equal((await get()).status, 200, "times: 1");
    // Request numbers count from the moment the rules are set.
    sim.setFaults([{ match: { requestNumber: 2 }, kind: "status", status: 500 }]);
    assert.deepEqual([(await get()).status, (await get()).status, (await get()).status], [200, 500, 200]);
    assert.equal(sim.requests().at(-2)?.fault, "status");
  });
  it("reset, truncate and hang make the client fail", async () => {
    sim.setFaults([{ kind: "reset", times: 1 }]);
    await assert.rejects(get());
    sim.setFaults([{ kind: "reset", afterBytes: 100, times: 1 }]);
    await assert.rejects(get());
    sim.setFaults([{ kind: "truncate", times: 1 }]);
    await assert.rejects(get());
    sim.setFaults([{ kind: "hang", times: 1 }]);
    await assert.rejects(get(undefined, { signal: AbortSignal.timeout(200) }));
    sim.setFaults([{ kind: "hang", ms: 150, times: 1 }]);
    const t = Date.now();
    assert.equal((await get()).status, 200);
    assert.ok(Date.now() - t >= 140);
  });
  it("malformed, no-value and html bodies", async () => {
    sim.setFaults([{ kind: "malformed", times: 1 }]);
    const m = await get();
    assert.equal(m.status, 200);
    assert.throws(() => JSON.parse(m.text));
    sim.setFaults([{ kind: "no-value", times: 1 }]);
    const n = await get();
    assert.equal(n.status, 200);
    assert.ok(n.json["@odata.context"] && !("value" in n.json));
    sim.setFaults([{ kind: "html", times: 1 }]);
    const h = await get();
    assert.match(h.headers.get("content-type") ?? "", /text\/html/);
    assert.match(h.text, /<html>/);
  });
  it("foreign-next-link points nextLink at another host", async () => {
    sim.setFaults([{ kind: "foreign-next-link", host: "evil.example", times: 1 }]);
    const r = await get();
    assert.equal(r.status, 200);
    assert.equal(r.json.value.length, 10);
    assert.equal(new URL(r.json["@odata.nextLink"]).host, "evil.example");
  });
  it("expire-token revokes issued tokens; a new token works", async () => {
    sim.setFaults([{ kind: "expire-token", times: 1 }]);
    const r = await get();
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, "InvalidAuthenticationToken");
    assert.equal((await get()).status, 401, "old token stays invalid");
    token = await getToken(sim);
    assert.equal((await get()).status, 200);
  });
  it("token-endpoint faults and seeded probability", async () => {
    sim.setFaults([{ match: { token: true }, kind: "status", status: 503, times: 1 }]);
    const t = await requestToken(sim);
    assert.equal(t.status, 503);
    assert.equal(t.json.error, "temporarily_unavailable");
    assert.equal((await requestToken(sim)).status, 200);
    sim.setFaults([{ match: { probability: 0.5 }, kind: "status", status: 502 }]);
    const codes: number[] = [];
    for (let i = 0; i < 30; i++) {
      codes.push((await get()).status);
    }
    const bad = codes.filter((c) => c === 502).length;
    assert.ok(bad > 5 && bad < 25, `502s: ${bad}`);
    sim.setFaults([]);
  });
});

describe("admin endpoints", () => {
  it("mirror the in-process API over HTTP", async () => {
    const sim = await startSimulator({ generate: false });
    try {
      const call = async (method: string, path: string, body?: unknown) => {
        const r = await fetch(`${sim.url}${path}`, { method, ...(body ? { body: JSON.stringify(body) } : {}) });
        return { status: r.status, json: (await r.json()) as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
      };
      assert.equal((await call("GET", "/_admin/health")).json.ok, true);
      assert.equal((await call("POST", "/_admin/events", { events: [makeSignIn(1, { id: "a1" })] })).status, 200);
      assert.equal(
        (
          await call("POST", "/_admin/events", {
            events: [makeSignIn(2, { id: "a2" })],
            visibleAt: new Date(Date.now() + 3600_000).toISOString(),
          })
        ).status,
        200,
      );
      const ev = await call("GET", "/_admin/events");
      assert.deepEqual(
        ev.json.events.map((e: { id: string }) => e.id),
        ["a1"],
      );
      assert.equal(
        (await call("GET", `/_admin/events?at=${encodeURIComponent(new Date(Date.now() + 7200_000).toISOString())}`))
          .json.count,
        2,
      );
      assert.equal((await call("POST", "/_admin/republish", { id: "a1", patch: { riskState: "atRisk" } })).status, 200);
      assert.equal((await call("POST", "/_admin/republish", { id: "nope", patch: {} })).status, 404);
      assert.equal(sim.visibleEvents()[0]?.riskState, "atRisk");
      assert.equal(
        (await call("PUT", "/_admin/faults", { rules: [{ kind: "status", status: 504, times: 1 }] })).status,
        200,
      );
      assert.equal((await call("PUT", "/_admin/faults", { rules: [{ kind: "bogus" }] })).status, 400);
      const tok = await getToken(sim);
      assert.equal((await graphGet(sim, LIST, tok)).status, 504);
      assert.equal((await call("PUT", "/_admin/mode", { mode: "no-permission" })).status, 200);
      assert.equal((await graphGet(sim, LIST, tok)).status, 403);
      await call("PUT", "/_admin/mode", { mode: "normal" });
      const reqs = await call("GET", "/_admin/requests");
      assert.deepEqual(
        reqs.json.requests.map((r: { kind: string; status: number }) => [r.kind, r.status]),
        [
          ["token", 200],
          ["graph", 504],
          ["graph", 403],
        ],
      );
      await call("DELETE", "/_admin/requests");
      assert.equal((await call("GET", "/_admin/requests")).json.requests.length, 0);
      assert.equal((await call("PUT", "/_admin/clock", { offsetMs: 60_000 })).status, 200);
      assert.ok(sim.now().getTime() - Date.now() > 59_000);
    } finally {
      await sim.close();
    }
  });
});

describe("synthetic universe", () => {
  let a: Simulator;
  let events: Array<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
  before(async () => {
    a = await startSimulator({ seed: 42, users: 40, historyDays: 6, clock: () => new Date(T0) });
    events = a.visibleEvents();
  });
  after(() => a.close());

  it("is deterministic per seed and differs across seeds", async () => {
    const opts = { users: 20, historyDays: 2, clock: () => new Date(T0) };
    const [b, b2, c] = await Promise.all([
      startSimulator({ seed: 42, ...opts }),
      startSimulator({ seed: 42, ...opts }),
      startSimulator({ seed: 43, ...opts }),
    ]);
    try {
      const eb = b.visibleEvents();
      assert.ok(eb.length > 1000);
      assert.equal(JSON.stringify(b2.visibleEvents()), JSON.stringify(eb));
      assert.notDeepEqual(
        c
          .visibleEvents()
          .slice(0, 50)
          .map((e) => e.id),
        eb.slice(0, 50).map((e) => e.id),
      );
    } finally {
      await Promise.all([b.close(), b2.close(), c.close()]);
    }
  });
  it("has a plausible mix of streams, failures, legacy auth, MFA and risk", () => {
    const inter = events.filter((e) => e.signInEventTypes[0] === "interactiveUser");
    const types = new Set(events.map((e) => e.signInEventTypes[0]));
    assert.deepEqual([...types].sort(), [
      "interactiveUser",
      "managedIdentity",
      "nonInteractiveUser",
      "servicePrincipal",
    ]);
    assert.ok(inter.length > 3000, `interactive: ${inter.length}`);
    assert.ok(events.filter((e) => e.signInEventTypes[0] === "nonInteractiveUser").length > inter.length);
    const failRate = inter.filter((e) => e.status.errorCode !== 0).length / inter.length;
    assert.ok(failRate > 0.08 && failRate < 0.2, `failure rate ${failRate}`);
    const codes = new Set(inter.map((e) => e.status.errorCode));
    for (const c of [50126, 50074, 50140, 53003]) {
      assert.ok(codes.has(c), `code ${c}`);
    }
    const legacy = inter.filter((e) =>
      ["IMAP", "POP", "SMTP", "Exchange ActiveSync", "MAPI", "other clients"].includes(e.clientAppUsed),
    );
    assert.ok(legacy.length / inter.length > 0.01, `legacy ${legacy.length}`);
    assert.ok(
      inter.some(
        (e) => e.authenticationRequirement === "multiFactorAuthentication" && e.authenticationDetails.length === 2,
      ),
    );
    const risky = inter.filter((e) => e.riskState === "atRisk");
    assert.ok(risky.length > 10 && risky.length / inter.length < 0.05, `risky ${risky.length}`);
    for (const e of events.slice(0, 2000)) {
      assert.equal(e.isInteractive, e.signInEventTypes[0] === "interactiveUser");
      assert.match(e.createdDateTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{7})?Z$/);
      if (e.userPrincipalName) {
        assert.equal(e.userPrincipalName, e.userPrincipalName.toLowerCase());
      }
      if (e.status.errorCode === 53003) {
        assert.equal(e.conditionalAccessStatus, "failure");
      }
    }
    assert.ok(
      events.some((e) => /\.\d{7}Z$/.test(e.createdDateTime)) && events.some((e) => /:\d\dZ$/.test(e.createdDateTime)),
    );
    assert.ok(
      events.some((e) => String(e.ipAddress).includes(":")),
      "IPv6",
    );
    assert.ok(
      events.some((e) => String(e.ipAddress).endsWith(".XXX")),
      "redacted IP",
    );
    assert.ok(new Set(inter.map((e) => e.location.countryOrRegion)).size >= 5);
  });
  it("contains password sprays and impossible travel", () => {
    const byIpHour = new Map<string, Set<string>>();
    for (const e of events) {
      if (e.status.errorCode !== 50126) {
        continue;
      }
      const k = `${e.ipAddress}|${e.createdDateTime.slice(0, 13)}`;
      const s = byIpHour.get(k) ?? new Set<string>();
      s.add(e.userId);
      byIpHour.set(k, s);
    }
    const sprays = [...byIpHour.values()].filter((s) => s.size >= 10);
    assert.ok(sprays.length >= 1, "at least one spray over 8 days");
    const travel = events.filter((e) => e.riskEventTypes_v2?.includes("unlikelyTravel"));
    assert.ok(travel.length >= 1);
  });
  it("keeps generating as the clock moves, with arrival latency and republication", async () => {
    let now = T0;
    const s = await startSimulator({
      seed: 5,
      users: 20,
      historyDays: 1,
      clock: () => new Date(now),
      arrivalLatency: { p50Seconds: 120, p99Seconds: 600, maxSeconds: 900 },
      republishRate: 0.2,
    });
    try {
      const before = s.visibleEvents();
      assert.ok(before.every((e) => Date.parse(String(e.createdDateTime)) <= T0 - 0));
      now += 2 * 3600_000;
      const later = s.visibleEvents();
      assert.ok(later.length > before.length);
      const beforeById = new Map(before.map((e) => [e.id, e]));
      const changed = later.filter(
        (e) => beforeById.has(e.id) && JSON.stringify(beforeById.get(e.id)) !== JSON.stringify(e),
      );
      assert.ok(changed.length > 0, "some events were republished with new content");
      // latency: some events created before T0 only became visible after T0
      const newOld = later.filter((e) => !beforeById.has(e.id) && Date.parse(String(e.createdDateTime)) < T0);
      assert.ok(newOld.length > 0, "late arrivals");
    } finally {
      await s.close();
    }
  });
});

describe("simulate command", () => {
  it("parses flags", () => {
    const o = parseSimulateArgs([
      "--port",
      "8080",
      "--seed",
      "3",
      "--throttle",
      "",
      "--latency",
      "60,300,3600",
      "--mode",
      "no-licence",
      "--faults",
      '[{"kind":"reset"}]',
      "--no-generate",
    ]);
    assert.notEqual(o, "help");
    assert.deepEqual(o, {
      port: 8080,
      seed: 3,
      generate: false,
      arrivalLatency: { p50Seconds: 60, p99Seconds: 300, maxSeconds: 3600 },
      throttle: { perTenant: 5, perApp: 122, windowMs: 10_000 },
      mode: "no-licence",
      faults: [{ kind: "reset" }],
    });
    assert.equal(parseSimulateArgs(["--help"]), "help");
    assert.throws(() => parseSimulateArgs(["--mode", "x"]));
  });
  it("runs until aborted and prints the env vars", async () => {
    const ac = new AbortController();
    const out = new PassThrough();
    let text = "";
    out.on("data", (d: Buffer) => {
      text += d.toString();
      if (text.includes("AZURE_CLIENT_SECRET")) {
        ac.abort();
      }
    });
    await runSimulatorCli(["--no-generate"], { signal: ac.signal, stdout: out });
    assert.match(text, /GRAPH_ENDPOINT=http:\/\/127\.0\.0\.1:\d+/);
    assert.match(text, /AZURE_AUTHORITY_HOST=/);
    assert.match(text, /simulator stopped/);
  });
});
