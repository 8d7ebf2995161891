// The CLI's pure parts. Decisions by type: what an error means (detail, fix, temporary) and `check`'s exit code
// come from the error's class and fields, never from its message text. Times, and the progress line.

import assert from "node:assert/strict";
import { test } from "node:test";

import { checkExitCode, type TenantCheck } from "../src/check.ts";
import { parseTime } from "../src/commands/args.ts";
import { formatCycleProgress } from "../src/commands/progress.ts";
import {
  AccessError,
  ConfigError,
  CredentialError,
  databaseSettingProblem,
  diagnose,
  EXIT,
  GraphProtocolError,
  listenProblem,
  TemporaryError,
} from "../src/errors.ts";

test("diagnose: detail, fix and temporary are fields of the error classes", () => {
  const credential = new CredentialError("token request was refused: invalid_client", "AADSTS7000215", {
    fix: "the client secret is wrong",
  });
  assert.equal(credential.message, "token request was refused: invalid_client. Fix: the client secret is wrong");
  assert.deepEqual(diagnose(credential), {
    detail: "token request was refused: invalid_client",
    fix: "the client secret is wrong",
    temporary: false,
  });
  // A fix text that reads like a temporary problem does not make it one.
  const tricky = new AccessError("refused", "Authorization_RequestDenied", "a temporary problem? no: grant consent");
  assert.equal(diagnose(tricky).temporary, false);
  assert.equal(diagnose(tricky).detail, "refused (Authorization_RequestDenied)");
  assert.equal(diagnose(new TemporaryError("Graph answered 503 three times")).temporary, true);
  assert.equal(diagnose(Object.assign(new Error("getaddrinfo ENOTFOUND x"), { code: "ENOTFOUND" })).temporary, true);
  assert.equal(diagnose(new GraphProtocolError("bad request", 400)).temporary, false);
  assert.equal(diagnose(new ConfigError(["PAGE_SIZE: bad"])).temporary, false);
  assert.equal(diagnose(new Error("surprise")).temporary, false);
});

test("check's exit code: 0 all passed, 78 when any failure is not temporary, 75 when all are", () => {
  const tenant = (items: TenantCheck["items"]): TenantCheck => ({ tenantId: "t", name: "t", ok: false, items });
  assert.equal(checkExitCode([tenant([{ name: "token", ok: true, detail: "" }])]), EXIT.ok);
  assert.equal(
    checkExitCode([tenant([{ name: "retention", ok: false, detail: "503", fix: "x", temporary: true }])]),
    EXIT.temporary,
  );
  assert.equal(
    checkExitCode([
      tenant([{ name: "retention", ok: false, detail: "503", temporary: true }]),
      tenant([{ name: "token", ok: false, detail: "wrong secret", temporary: false }]),
    ]),
    EXIT.config,
  );
});

test("database settings problems by SQLSTATE and code; listeners by code", () => {
  const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });
  assert.match(databaseSettingProblem(pgError("28P01", "password authentication failed")) ?? "", /password/);
  assert.match(databaseSettingProblem(pgError("3D000", 'database "x" does not exist')) ?? "", /does not exist/);
  assert.match(databaseSettingProblem(pgError("28000", "no pg_hba.conf entry")) ?? "", /pg_hba/);
  assert.equal(databaseSettingProblem(pgError("ECONNREFUSED", "connect ECONNREFUSED")), undefined);
  assert.equal(databaseSettingProblem(pgError("57P03", "the database system is starting up")), undefined);
  const inUse = listenProblem(pgError("EADDRINUSE", "listen EADDRINUSE"), "METRICS_PORT", "0.0.0.0:9464");
  assert.ok(inUse instanceof ConfigError);
  assert.match(inUse.message, /^Invalid configuration: METRICS_PORT: 0\.0\.0\.0:9464 is already in use/);
  assert.equal(listenProblem(new Error("other"), "METRICS_PORT", "x"), undefined);
});

test("parseTime: ISO times and ages only; `1` is not 2001-01-01", () => {
  const now = new Date("2026-11-28T12:00:00Z");
  assert.equal(parseTime("1", now), undefined);
  assert.equal(parseTime("2026", now), undefined);
  assert.equal(parseTime("March 1", now), undefined);
  assert.equal(parseTime("30d", now)?.toISOString(), "2026-10-29T12:00:00.000Z");
  assert.equal(parseTime("2026-11-01", now)?.toISOString(), "2026-11-01T00:00:00.000Z");
  assert.equal(parseTime("2026-11-01T10:00:00+02:00", now)?.toISOString(), "2026-11-01T08:00:00.000Z");
});

test("the progress line of `once`: counts, rate, and the wait for the throttle budget while it lasts", () => {
  const p = {
    streamsDone: 1,
    streams: 4,
    windows: 3,
    events: 5666,
    inserted: 5600,
    pages: 57,
    elapsedMs: 125_000,
    waiting: 1,
    waitedMs: 90_000,
    budget: { perTenant: 5, windowMs: 10_000 },
  };
  assert.equal(
    formatCycleProgress(p),
    "once · streams 1/4 done · 3 windows · 5,666 events (5,600 new) · 57 pages · 45 ev/s · 2m5s · waiting for Graph's throttle budget (5 requests per 10s per tenant)",
  );
  assert.equal(
    formatCycleProgress({ ...p, streamsDone: 4, waiting: 0 }, true),
    "once · streams 4/4 done · 3 windows · 5,666 events (5,600 new) · 57 pages · 45 ev/s · done in 2m5s · 1m30s spent waiting for the throttle budget",
  );
});
