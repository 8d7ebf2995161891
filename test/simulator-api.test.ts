import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { crawl, getToken, graphGet, requestToken } from "../src/simulator/client.ts";
import { makeSignIn, startSimulator } from "../src/simulator/index.ts";
import type { Simulator } from "../src/simulator/index.ts";

const T0 = Date.parse("2025-03-04T12:00:00Z");
const q = (filter: string, extra = ""): string =>
  `/v1.0/auditLogs/signIns?$filter=${encodeURIComponent(filter)}${extra}`;

describe("token endpoint", () => {
  let sim: Simulator;
  before(async () => {
    sim = await startSimulator({ generate: false });
  });
  after(() => sim.close());

  it("issues a bearer token for valid client credentials", async () => {
    const r = await requestToken(sim);
    assert.equal(r.status, 200);
    assert.equal(r.json.token_type, "Bearer");
    assert.equal(r.json.expires_in, 3599);
    assert.equal(r.json.ext_expires_in, 3599);
    assert.match(r.json.access_token, /^\S{20,}$/);
  });
  it("rejects a wrong secret with 401 invalid_client AADSTS7000215", async () => {
    const r = await requestToken(sim, { client_secret: "nope" });
    assert.equal(r.status, 401);
    assert.equal(r.json.error, "invalid_client");
    assert.deepEqual(r.json.error_codes, [7000215]);
    assert.match(r.json.error_description, /^AADSTS7000215: Invalid client secret provided/);
    for (const k of ["timestamp", "trace_id", "correlation_id"]) {
      assert.ok(r.json[k], k);
    }
  });
  it("rejects unknown tenant, unknown client and bad scope", async () => {
    const t = await requestToken(sim, {}, "99999999-0000-4000-8000-000000000009");
    assert.equal(t.status, 400);
    assert.equal(t.json.error, "invalid_request");
    assert.deepEqual(t.json.error_codes, [90002]);
    const c = await requestToken(sim, { client_id: "22222222-2222-4222-8222-222222222222" });
    assert.equal(c.status, 400);
    assert.equal(c.json.error, "unauthorized_client");
    assert.deepEqual(c.json.error_codes, [700016]);
    const s = await requestToken(sim, { scope: "https://graph.microsoft.com/AuditLog.Read.All" });
    assert.equal(s.status, 400);
    assert.equal(s.json.error, "invalid_scope");
    assert.deepEqual(s.json.error_codes, [70011]);
  });
  it("accepts a client assertion instead of a secret", async () => {
    const r = await requestToken(sim, {
      client_secret: "",
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: "a.b.c",
    });
    assert.equal(r.status, 200);
  });
  it("requires a valid bearer token on Graph", async () => {
    const none = await graphGet(sim, "/v1.0/auditLogs/signIns");
    assert.equal(none.status, 401);
    assert.equal(none.json.error.code, "InvalidAuthenticationToken");
    assert.ok(none.json.error.innerError["request-id"]);
    assert.ok(none.json.error.innerError.date);
    const bad = await graphGet(sim, "/v1.0/auditLogs/signIns", "garbage");
    assert.equal(bad.status, 401);
    const rec = sim.requests().filter((r) => r.kind === "graph");
    assert.deepEqual(
      rec.map((r) => [r.status, r.authorized, r.hadAuthorization]),
      [
        [401, false, false],
        [401, false, true],
      ],
    );
  });
  it("expires tokens after their lifetime", async () => {
    let now = T0;
    const s2 = await startSimulator({ generate: false, clock: () => new Date(now), tokenLifetimeSeconds: 60 });
    try {
      const tok = await getToken(s2);
      assert.equal((await graphGet(s2, "/v1.0/auditLogs/signIns", tok)).status, 200);
      now += 61_000;
      const r = await graphGet(s2, "/v1.0/auditLogs/signIns", tok);
      assert.equal(r.status, 401);
      assert.match(r.json.error.message, /expired/);
    } finally {
      await s2.close();
    }
  });
});

describe("signIns query semantics", () => {
  let sim: Simulator;
  let token: string;
  let now = T0;
  const at = (s: string): Record<string, unknown> => makeSignIn(7, { id: `id-${s}`, createdDateTime: s });
  before(async () => {
    sim = await startSimulator({ generate: false, clock: () => new Date(now) });
    token = await getToken(sim);
    sim.addEvents([
      at("2025-03-04T10:00:00Z"),
      at("2025-03-04T10:00:01.1234567Z"),
      at("2025-03-04T10:00:02Z"),
      makeSignIn(8, { id: "id-b", createdDateTime: "2025-03-04T10:00:02Z" }),
      makeSignIn(9, {
        id: "id-ni",
        createdDateTime: "2025-03-04T10:00:03Z",
        isInteractive: false,
        signInEventTypes: ["nonInteractiveUser"],
      }),
      makeSignIn(9, {
        id: "id-sp",
        createdDateTime: "2025-03-04T10:00:04Z",
        signInEventTypes: ["servicePrincipal"],
        isInteractive: false,
      }),
    ]);
  });
  after(() => sim.close());
  const ids = async (path: string): Promise<string[]> => {
    const r = await graphGet(sim, path, token);
    assert.equal(r.status, 200, r.text);
    return (r.json.value as Array<{ id: string }>).map((e) => e.id);
  };

  it("serves newest first by default with Graph headers and tie-break by id", async () => {
    const r = await graphGet(sim, "/v1.0/auditLogs/signIns", token);
    assert.equal(
      r.headers.get("content-type"),
      "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8",
    );
    assert.ok(r.headers.get("request-id"));
    assert.equal(r.headers.get("date"), new Date(now).toUTCString());
    assert.match(r.json["@odata.context"], /\/v1\.0\/\$metadata#auditLogs\/signIns$/);
    assert.equal(r.json["@odata.nextLink"], undefined);
    assert.deepEqual(
      r.json.value.map((e: { id: string }) => e.id),
      ["id-b", "id-2025-03-04T10:00:02Z", "id-2025-03-04T10:00:01.1234567Z", "id-2025-03-04T10:00:00Z"],
    );
    assert.deepEqual(await ids("/v1.0/auditLogs/signIns?$orderby=createdDateTime%20asc"), [
      "id-2025-03-04T10:00:00Z",
      "id-2025-03-04T10:00:01.1234567Z",
      "id-2025-03-04T10:00:02Z",
      "id-b",
    ]);
  });
  it("applies ge/gt/le/lt/eq exactly, to 100 ns", async () => {
    const t1 = "2025-03-04T10:00:01.1234567Z";
    assert.equal((await ids(q(`createdDateTime ge ${t1}`))).length, 3);
    assert.equal((await ids(q(`createdDateTime gt ${t1}`))).length, 2);
    assert.equal((await ids(q(`createdDateTime le ${t1}`))).length, 2);
    assert.equal((await ids(q(`createdDateTime lt ${t1}`))).length, 1);
    assert.deepEqual(await ids(q(`createdDateTime eq ${t1}`)), [`id-${t1}`]);
    assert.equal((await ids(q("createdDateTime gt 2025-03-04T10:00:01.1234566Z"))).length, 3);
    assert.equal((await ids(q("createdDateTime lt 2025-03-04T10:00:01.1234568Z"))).length, 2);
    assert.deepEqual(
      await ids(q("(createdDateTime ge 2025-03-04T10:00:01Z and createdDateTime le 2025-03-04T10:00:02Z)")).then(
        (x) => x.length,
      ),
      3,
    );
    assert.equal(
      (await ids(q("createdDateTime ge 2025-03-04T10:00:00Z and createdDateTime lt 2025-03-04T10:00:01Z"))).length,
      1,
    );
  });
  it("filters on other properties", async () => {
    const ev = sim.visibleEvents().find((e) => e.id === "id-b");
    assert.ok(ev);
    assert.deepEqual(
      await ids(q(`userPrincipalName eq '${String(ev.userPrincipalName)}' and appId eq '${String(ev.appId)}'`)).then(
        (x) => x.includes("id-b"),
      ),
      true,
    );
    const failed = await ids(q("status/errorCode eq 0"));
    for (const id of failed) {
      assert.equal((sim.visibleEvents().find((e) => e.id === id)?.status as { errorCode: number }).errorCode, 0);
    }
  });
  it("rejects bad filters and query options with Graph 400 bodies", async () => {
    const cases: Array<[string, RegExp]> = [
      [q("createdDateTime ge '2025-03-04T10:00:00Z'"), /^Invalid filter clause$/],
      [q("createdDateTime foo 2025-03-04T10:00:00Z"), /^Invalid filter clause$/],
      [q("isInteractive eq false"), /^Invalid filter clause$/],
      [q("nosuchProp eq 'x'"), /^Invalid filter clause$/],
      [
        q("signInEventTypes/any(t: t eq 'interactiveUser')"),
        /^Could not find a property named 'signInEventTypes' on type 'microsoft.graph.signIn'\.$/,
      ],
      [
        "/v1.0/auditLogs/signIns?$skip=10",
        /^Query option 'Skip' is not allowed\. To allow it, set the 'AllowedQueryOptions' property on EnableQueryAttribute or QueryValidationSettings\.$/,
      ],
      ["/v1.0/auditLogs/signIns?$count=true", /^Query option 'Count' is not allowed/],
      ["/v1.0/auditLogs/signIns?$select=id", /^Query option 'Select' is not allowed/],
      ["/v1.0/auditLogs/signIns?$top=1001", /1000/],
      ["/v1.0/auditLogs/signIns?$top=0", /1000/],
      ["/v1.0/auditLogs/signIns?$foo=1", /\$foo/],
      ["/v1.0/auditLogs/signIns?$orderby=userId", /orderby/],
      ["/v1.0/auditLogs/signIns?$skiptoken=abc.def", /^Invalid Skip Token$/],
    ];
    for (const [path, msg] of cases) {
      const r = await graphGet(sim, path, token);
      assert.equal(r.status, 400, path);
      assert.equal(r.json.error.code, "BadRequest", path);
      assert.match(r.json.error.message, msg, path);
      assert.ok(r.json.error.innerError["client-request-id"], path);
    }
  });
  it("returns interactive only by default; beta signInEventTypes selects streams", async () => {
    assert.ok(!(await ids("/beta/auditLogs/signIns")).includes("id-ni"));
    const b = (f: string): Promise<string[]> => ids(`/beta/auditLogs/signIns?$filter=${encodeURIComponent(f)}`);
    assert.deepEqual(await b("signInEventTypes/any(t: t eq 'nonInteractiveUser')"), ["id-ni"]);
    assert.deepEqual(await b("signInEventTypes/any(t: t eq 'servicePrincipal')"), ["id-sp"]);
    assert.equal((await b("signInEventTypes/any(t: t eq 'interactiveUser' or t eq 'nonInteractiveUser')")).length, 5);
    assert.deepEqual((await b("signInEventTypes/any(t: t ne 'interactiveUser')")).sort(), ["id-ni", "id-sp"]);
    assert.deepEqual(
      await b("createdDateTime ge 2025-03-04T10:00:03Z and signInEventTypes/any(t: t eq 'noninteractiveUser')"),
      ["id-ni"],
    );
  });
  it("projects v1.0 objects to v1.0 properties; beta keeps everything", async () => {
    const v1 = (await graphGet(sim, "/v1.0/auditLogs/signIns?$top=1", token)).json.value[0];
    const beta = (await graphGet(sim, "/beta/auditLogs/signIns?$top=1", token)).json.value[0];
    for (const k of [
      "signInEventTypes",
      "userType",
      "authenticationDetails",
      "authenticationRequirement",
      "servicePrincipalId",
      "managedServiceIdentity",
      "userAgent",
    ]) {
      assert.ok(!(k in v1), `v1.0 must not have ${k}`);
      assert.ok(k in beta, `beta must have ${k}`);
    }
    for (const k of [
      "id",
      "createdDateTime",
      "status",
      "location",
      "deviceDetail",
      "appliedConditionalAccessPolicies",
      "isInteractive",
    ]) {
      assert.ok(k in v1, k);
    }
  });
  it("hides events until their visibleAt, and serves the latest republished version", async () => {
    sim.addEvents([makeSignIn(10, { id: "late", createdDateTime: "2025-03-04T09:00:00Z" })], {
      visibleAt: new Date(now + 60_000),
    });
    assert.ok(!(await ids("/v1.0/auditLogs/signIns")).includes("late"));
    now += 60_000;
    assert.ok((await ids("/v1.0/auditLogs/signIns")).includes("late"));
    sim.republish("late", { riskLevelDuringSignIn: "high", riskState: "atRisk" });
    const r = await graphGet(sim, q("createdDateTime eq 2025-03-04T09:00:00Z"), token);
    assert.equal(r.json.value.length, 1);
    assert.equal(r.json.value[0].riskLevelDuringSignIn, "high");
    assert.equal(sim.visibleEvents().filter((e) => e.id === "late").length, 1);
    assert.throws(() => sim.republish("does-not-exist", {}));
  });
  it("serves malformed added events as-is", async () => {
    sim.addEvents([{ userPrincipalName: "noid@x.example", createdDateTime: "not a date" }]);
    const r = await graphGet(sim, "/beta/auditLogs/signIns", token);
    assert.ok(r.json.value.some((e: Record<string, unknown>) => e.createdDateTime === "not a date" && !("id" in e)));
  });
});

describe("paging", () => {
  let sim: Simulator;
  let token: string;
  const now = T0;
  before(async () => {
    sim = await startSimulator({
      users: 15,
      historyDays: 2,
      clock: () => new Date(now),
      pageSize: { shortPageRate: 0.5 },
    });
    token = await getToken(sim);
  });
  after(() => sim.close());

  it("crawls every page to exactly the oracle set (no dup, no miss), with short pages", async () => {
    const { items, pages } = await crawl(sim, "/v1.0/auditLogs/signIns?$top=50", token);
    const expected = sim
      .visibleEvents()
      .filter((e) => e.isInteractive === true)
      .map((e) => e.id);
    const got = items.map((e) => e.id);
    assert.ok(expected.length > 200, `universe too small: ${expected.length}`);
    assert.equal(new Set(got).size, got.length, "duplicates");
    assert.deepEqual(got, expected, "same set, newest first");
    assert.ok(
      pages.slice(0, -1).some((n) => n < 50),
      "some short page",
    );
    assert.ok(pages.every((n) => n <= 50));
  });
  it("keeps the original query in nextLink and rejects tampered or foreign skiptokens", async () => {
    const f = "createdDateTime ge 2025-03-03T00:00:00Z and createdDateTime le 2025-03-04T11:00:00Z";
    const r = await graphGet(sim, `/beta/auditLogs/signIns?$filter=${encodeURIComponent(f)}&$top=20`, token);
    const next = new URL(r.json["@odata.nextLink"]);
    assert.equal(next.origin, sim.url);
    assert.equal(next.searchParams.get("$filter"), f);
    assert.equal(next.searchParams.get("$top"), "20");
    const st = next.searchParams.get("$skiptoken") ?? "";
    assert.equal((await graphGet(sim, next.href, token)).status, 200);
    const tampered = new URL(next.href);
    tampered.searchParams.set("$skiptoken", `${st.slice(0, 5)}x${st.slice(6)}`);
    assert.equal((await graphGet(sim, tampered.href, token)).json.error.message, "Invalid Skip Token");
    const other = new URL(next.href);
    other.searchParams.set("$top", "21");
    assert.equal((await graphGet(sim, other.href, token)).status, 400);
  });
  it("is keyset-like: events appearing mid-crawl before the cursor are missed, after it are served once", async () => {
    const r1 = await graphGet(sim, "/v1.0/auditLogs/signIns?$top=10", token);
    const first = r1.json.value as Array<{ id: string; createdDateTime: string }>;
    const lastTime = Date.parse(first[first.length - 1]?.createdDateTime ?? "");
    sim.addEvents([
      makeSignIn(1, { id: "zz-newer", createdDateTime: new Date(now - 1000).toISOString() }),
      makeSignIn(2, { id: "zz-older", createdDateTime: new Date(lastTime - 1).toISOString() }),
    ]);
    let next: string | undefined = r1.json["@odata.nextLink"];
    const rest: string[] = [];
    while (next) {
      const r = await graphGet(sim, next, token);
      rest.push(...r.json.value.map((e: { id: string }) => e.id));
      next = r.json["@odata.nextLink"];
    }
    assert.ok(!rest.includes("zz-newer"));
    assert.equal(rest.filter((id) => id === "zz-older").length, 1);
    const all = [...first.map((e) => e.id), ...rest];
    assert.equal(new Set(all).size, all.length);
  });
});

describe("throttling and modes", () => {
  it("returns 429 TooManyRequests with Retry-After over the window and recovers", async () => {
    let now = T0;
    const sim = await startSimulator({
      generate: false,
      clock: () => new Date(now),
      throttle: { perTenant: 3, perApp: 100, windowMs: 10_000 },
    });
    try {
      const tok = await getToken(sim);
      for (let i = 0; i < 3; i++) {
        assert.equal((await graphGet(sim, "/v1.0/auditLogs/signIns", tok)).status, 200);
      }
      now += 4000;
      const r = await graphGet(sim, "/v1.0/auditLogs/signIns", tok);
      assert.equal(r.status, 429);
      assert.equal(r.json.error.code, "TooManyRequests");
      assert.equal(r.json.error.message, "This request is throttled. Please try again after some time.");
      assert.equal(r.headers.get("retry-after"), "6");
      now += 6000;
      assert.equal((await graphGet(sim, "/v1.0/auditLogs/signIns", tok)).status, 200);
    } finally {
      await sim.close();
    }
  });
  it("throttles per app across tenants too", async () => {
    const tenants = ["00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"];
    const sim = await startSimulator({
      generate: false,
      tenants,
      throttle: { perTenant: 5, perApp: 3, windowMs: 60_000 },
    });
    try {
      const a = await getToken(sim, tenants[0]);
      const b = await getToken(sim, tenants[1]);
      const codes = [];
      for (const t of [a, b, a, b]) {
        codes.push((await graphGet(sim, "/v1.0/auditLogs/signIns", t)).status);
      }
      assert.deepEqual(codes, [200, 200, 200, 429]);
    } finally {
      await sim.close();
    }
  });
  it("answers 403 in no-licence and no-permission modes", async () => {
    const sim = await startSimulator({ generate: false, mode: "no-licence" });
    try {
      const tok = await getToken(sim);
      const r = await graphGet(sim, "/v1.0/auditLogs/signIns", tok);
      assert.equal(r.status, 403);
      assert.equal(r.json.error.code, "Authentication_RequestFromNonPremiumTenantOrB2CTenant");
      assert.equal(r.json.error.message, "Neither tenant is B2C or tenant doesn't have premium license");
      sim.setMode("no-permission");
      const p = await graphGet(sim, "/v1.0/auditLogs/signIns", tok);
      assert.equal(p.status, 403);
      assert.equal(p.json.error.code, "Authorization_RequestDenied");
      sim.setMode("normal");
      assert.equal((await graphGet(sim, "/v1.0/auditLogs/signIns", tok)).status, 200);
    } finally {
      await sim.close();
    }
  });
});
