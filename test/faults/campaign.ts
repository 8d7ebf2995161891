// The fault campaign (issue 4, "Proof"): real daemon processes (`once` and `run`) against the Graph simulator, which
// publishes continuously (late events, re-publishes), and a dedicated PostgreSQL cluster behind a TCP fault proxy.
// A seeded nemesis runs one episode after another; each episode injects faults, lets a daemon meet them, checks the
// daemon's exit, and heals. Afterwards everything is healed, `once` runs until it succeeds, and the checker (H5)
// compares the table with everything the simulator published. See docs/faults.md.

import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";

import pg from "pg";

import { STREAM_NAMES } from "../../src/events/streams.ts";
import { DEFAULT_CLIENT, makeSignIn, mulberry32, type Rng } from "../../src/simulator/index.ts";
import type { FaultRule } from "../../src/simulator/faults.ts";
import { type Simulator, startSimulator } from "../../src/simulator/server.ts";
import { startEmbeddedPostgres, type EmbeddedDatabase } from "../../src/store/embedded.ts";
import { migrate } from "../../src/store/migrate.ts";
import { daemonEnv, type Finished, runCli, type Running, startCli } from "../helpers/daemon.ts";
import { silentLog } from "../helpers/db.ts";
import { freePort } from "../helpers/global-setup.ts";
import { createReaderLogin, type Squatter, startLockSquatter } from "./db-squatter.ts";
import { PgProxy } from "./pg-proxy.ts";
import { type PoisonEvent, poisonEvents } from "./poison.ts";

export interface CampaignOptions {
  seed: number;
  /** Wall time of the random nemesis phase (the final recovery and the check come on top); not with everyKind. */
  durationMs: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Keep the work directory (PostgreSQL cluster, daemon logs) for a post-mortem. */
  keep?: boolean;
  /** One progress line per episode. */
  verbose?: boolean;
  /**
   * Instead of random episodes for durationMs: every kind once, however long that takes, then retried up to twice
   * when its fault did not happen (durationMs is not used).
   */
  everyKind?: boolean;
}

export interface CampaignResult {
  seed: number;
  injected: number;
  /** Faults that really happened, per kind. */
  byKind: Record<string, number>;
  episodes: number;
  sigkills: number;
  sigterms: number;
  /** Episodes per kind whose fault really happened. */
  fired: Record<string, number>;
  /** With everyKind: kinds whose fault never happened. */
  missing: string[];
  processes: number;
  /** Exit outcomes per process ("0", "75", "SIGKILL", …). */
  exits: Record<string, number>;
  eventsPublished: number;
  republished: number;
  expected: number;
  stored: number;
  lost: number;
  duplicates: number;
  /** Stored rows older than the simulator's latest version (re-publish missed). */
  stale: number;
  /** Stored rows the simulator never showed. */
  phantoms: number;
  regressions: number;
  checkpointSamples: number;
  secretHits: number;
  /** Poison events published; of the ones PostgreSQL refuses, how many are in rejected_events. */
  poisonPublished: number;
  poisonRejected: number;
  /**
   * Configured streams stalled at the end: after the final healing `once` succeeded, the checkpoint is not past the
   * moment the campaign published its last events, or `status --json` shows the last outcome as not a success.
   */
  stalled: number;
  /** Milliseconds from SIGTERM to exit 0 of `run` daemons signalled while PostgreSQL was blackholed. */
  blackholeSigtermMs: number[];
  /** Everything else that went wrong (unexpected exit codes, hangs, Graph calls while PostgreSQL was down…). */
  problems: string[];
  lostIds: string[];
  line: string;
  ok: boolean;
  workDir: string;
}

// Daemon settings: small pages so that windows have many pages (and many commits to hit), short timeouts.
const SETTLE_S = 10;
const OVERLAP_S = 60;
/** Latest arrival of any event or re-publish after its createdDateTime; must stay ≤ OVERLAP + SETTLE. */
const MAX_LATENESS_S = 50;
const ONCE_WATCHDOG_MS = 60_000;

type Kind =
  | "sigkill-inflight"
  | "sigkill-random"
  | "sigkill-commit"
  | "sigterm"
  | "sigterm-retry-after"
  | "pg-down-at-start"
  | "pg-restart"
  | "pg-reset"
  | "commit-drop"
  | "pg-blackhole"
  | "graph-reset"
  | "graph-hang"
  | "429-storm"
  | "5xx-run"
  | "expire-token"
  | "malformed"
  | "clock-skew"
  | "read-only"
  | "disk-full"
  | "poison"
  | "oversized"
  | "retry-after-huge"
  | "past-date"
  | "bi-squatter";

const KINDS: Array<[Kind, number]> = [
  ["sigkill-inflight", 6],
  ["sigkill-random", 6],
  ["sigkill-commit", 6],
  ["sigterm", 4],
  ["sigterm-retry-after", 3],
  ["pg-down-at-start", 3],
  ["pg-restart", 3],
  ["pg-reset", 4],
  ["commit-drop", 5],
  ["pg-blackhole", 3],
  ["graph-reset", 4],
  ["graph-hang", 3],
  ["429-storm", 4],
  ["5xx-run", 4],
  ["expire-token", 4],
  ["malformed", 4],
  ["clock-skew", 3],
  ["read-only", 3],
  ["disk-full", 3],
  ["poison", 3],
  ["oversized", 3],
  ["retry-after-huge", 3],
  ["past-date", 3],
  ["bi-squatter", 3],
];

const GRAPH_KINDS = new Set<Kind>([
  "graph-reset",
  "graph-hang",
  "429-storm",
  "5xx-run",
  "expire-token",
  "malformed",
  "oversized",
  "retry-after-huge",
  "past-date",
]);
/** Kinds after which a `run` daemon must always show a cycle that completes (the fault must not stop the stream). */
const MUST_RECOVER = new Set<Kind>(["poison", "oversized", "retry-after-huge", "past-date", "bi-squatter"]);
/** A blackholed PostgreSQL must outlast the daemon's leases (issue 12 §4). */
const LEASE_TTL_S = 6;
const PAST_DATE = "Mon, 01 Jan 2001 00:00:00 GMT";
export const ALL_KINDS: readonly Kind[] = KINDS.map(([k]) => k);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(predicate: () => boolean, timeoutMs: number, stepMs = 15): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (predicate()) {
      return true;
    }
    await sleep(stepMs);
  }
  return predicate();
}

function sevenDigits(iso: string): string {
  const match = /^(.{19})(?:\.(\d+))?Z$/.exec(iso);
  return match ? `${match[1]}.${(match[2] ?? "").padEnd(7, "0").slice(0, 7)}Z` : iso;
}

function isInteractive(e: Record<string, unknown>): boolean {
  const types = e.signInEventTypes;
  if (Array.isArray(types)) {
    return types.includes("interactiveUser");
  }
  return e.isInteractive !== false;
}

/** The event as the beta endpoint (which the interactive stream reads by default) shows it: the whole object. */
function asRead(e: Record<string, unknown>): unknown {
  return JSON.parse(JSON.stringify(e));
}

/** A dedicated PostgreSQL cluster that the campaign may stop and start at will. */
class Cluster {
  db: EmbeddedDatabase | undefined;
  readonly dir: string;
  readonly port: number;
  constructor(dir: string, port: number) {
    this.dir = dir;
    this.port = port;
  }
  async start(): Promise<EmbeddedDatabase> {
    this.db = await startEmbeddedPostgres({ dir: this.dir, port: this.port });
    return this.db;
  }
  async stop(): Promise<void> {
    const db = this.db;
    this.db = undefined;
    await db?.stop();
  }
}

interface Proc {
  id: number;
  command: "once" | "run";
  kind: Kind | "final";
  running: Running;
  exited: boolean;
  result?: Finished;
  signalSent?: NodeJS.Signals;
  signalAt?: number;
  startedAt: number;
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const say = options.log ?? (() => undefined);
  // The schedule (kinds, in order) comes from `rng`; each episode's parameters from its own generator, seeded by
  // the seed and the episode's number, so that how many draws an earlier episode made (which can depend on process
  // timing: a daemon that exited before its fault) never shifts a later episode's parameters.
  const rng: Rng = mulberry32(options.seed);
  let episodeRng: Rng = rng;
  const rand = (lo: number, hi: number) => lo + Math.floor(episodeRng() * (hi - lo + 1));
  const chance = (p: number) => episodeRng() < p;
  const pickKind = (): Kind => {
    const total = KINDS.reduce((s, [, w]) => s + w, 0);
    let x = rng() * total;
    for (const [k, w] of KINDS) {
      if ((x -= w) < 0) {
        return k;
      }
    }
    return "sigkill-random";
  };

  const workDir = await mkdtemp(path.join(tmpdir(), "signin-faults-"));
  await chmod(workDir, 0o755); // PostgreSQL runs as `postgres` when we are root
  const cluster = new Cluster(path.join(workDir, "cluster"), await freePort());
  const problems: string[] = [];
  const byKind: Record<string, number> = {};
  const count = (kind: string, n = 1) => {
    if (n > 0) {
      byKind[kind] = (byKind[kind] ?? 0) + n;
    }
  };
  const exits: Record<string, number> = {};
  /** Signals that really stopped a running daemon (SIGTERM: with exit 0). */
  const signals = { SIGKILL: 0, SIGTERM: 0 };
  /** Episodes, per kind, whose fault really happened. */
  const fired: Record<string, number> = {};
  const procs: Proc[] = [];
  const cleanups: Array<() => Promise<unknown>> = [];

  const base = await cluster.start();
  const adminUrl = base.url;
  const dbUrl = (() => {
    const u = new URL(adminUrl);
    u.pathname = "/faults";
    return u.toString();
  })();
  const dbPassword = decodeURIComponent(new URL(adminUrl).password);
  const admin = new pg.Pool({ connectionString: adminUrl, max: 2, connectionTimeoutMillis: 3000 });
  admin.on("error", () => undefined);
  await admin.query("create database faults");
  await migrate(dbUrl, silentLog);
  const direct = new pg.Pool({ connectionString: dbUrl, max: 2, connectionTimeoutMillis: 3000 });
  direct.on("error", () => undefined);
  const proxy = await PgProxy.start({ host: "127.0.0.1", port: cluster.port });
  const daemonDbUrl = proxy.url(dbUrl);

  const secret = `canary-${randomBytes(24).toString("base64url")}`;
  let maxOffsetMs = -90_000;
  const sim: Simulator = await startSimulator({
    seed: options.seed,
    users: 40,
    signInsPerUserPerDay: 150,
    historyDays: 1,
    clients: { [DEFAULT_CLIENT]: secret },
    arrivalLatency: { p50Seconds: 2, p99Seconds: 20, maxSeconds: 30 },
    republishRate: 0,
    // Graph's clock starts 90 s behind the host: a daemon that trusted the host clock would move its checkpoint
    // past events Graph has not published yet (90 s > SETTLE + OVERLAP − lateness).
    clockOffsetMs: maxOffsetMs,
  });
  let offsetMs = maxOffsetMs;

  // Continuous publishing: ~5 events/s, mostly on time, some late (up to MAX_LATENESS_S), some re-published.
  const eventRng = mulberry32(options.seed ^ 0x5eed);
  let published = 0;
  let republished = 0;
  const recent: Array<{ id: string; createdMs: number }> = [];
  /** Simulator time of the latest publishing tick (every event published so far was created at or before it). */
  let lastPublishedAt = sim.now();
  const poisonPublished: PoisonEvent[] = [];
  const blackholeSigtermMs: number[] = [];
  const publisher = setInterval(() => {
    lastPublishedAt = sim.now();
    const now = lastPublishedAt.getTime();
    const n = Math.floor(eventRng() * 3);
    const batch: Array<Record<string, unknown>> = [];
    for (let i = 0; i < n; i++) {
      const r = eventRng();
      const lateS = r < 0.8 ? eventRng() * 5 : r < 0.95 ? 5 + eventRng() * 25 : 30 + eventRng() * (MAX_LATENESS_S - 30);
      const createdMs = Math.floor(now - lateS * 1000);
      const id = `fault-${options.seed}-${++published}`;
      batch.push(makeSignIn(eventRng, { id, createdDateTime: new Date(createdMs).toISOString() }));
      recent.push({ id, createdMs });
    }
    if (batch.length > 0) {
      sim.addEvents(batch);
    }
    // Only events created at most 45 s ago are re-published (the list is in publishing order, not creation order).
    const fresh = recent.filter((e) => e.createdMs >= now - (MAX_LATENESS_S - 5) * 1000);
    recent.splice(0, recent.length, ...fresh);
    if (recent.length > 0 && eventRng() < 0.25) {
      const target = recent[Math.floor(eventRng() * recent.length)];
      if (target) {
        sim.republish(target.id, {
          riskState: eventRng() < 0.5 ? "atRisk" : "remediated",
          riskLevelAggregated: ["low", "medium", "high"][Math.floor(eventRng() * 3)],
          status: { errorCode: 50126, failureReason: `re-published ${++republished}` },
        });
      }
    }
  }, 200);
  cleanups.push(() => Promise.resolve(clearInterval(publisher)));

  // Checkpoint sampler, straight to the cluster (not through the proxy).
  const samples: number[] = [];
  let regressions = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      try {
        const r = await direct.query<{ position: Date }>(
          "select position from checkpoints where tenant_id = $1 and stream = 'interactiveUser'",
          [sim.tenantId],
        );
        const p = r.rows[0]?.position.getTime();
        if (p !== undefined) {
          const last = samples.at(-1);
          if (last !== undefined && p < last) {
            regressions++;
            problems.push(`checkpoint regressed from ${new Date(last).toISOString()} to ${new Date(p).toISOString()}`);
          }
          samples.push(p);
        }
      } catch {
        // the cluster is down or restarting
      }
      await sleep(60);
    }
  })();

  const baseEnv = (extra: Record<string, string> = {}) =>
    daemonEnv(sim, daemonDbUrl, {
      INITIAL_LOOKBACK: "30m",
      OVERLAP: `${OVERLAP_S}s`,
      SETTLE: `${SETTLE_S}s`,
      PAGE_SIZE: "25",
      HTTP_TIMEOUT: "2s",
      MAX_RETRIES: "3",
      RETRY_BASE_DELAY: "50ms",
      MAX_RETRY_AFTER: "3s",
      CYCLE_DEADLINE: "20s",
      DATABASE_WAIT: "3s",
      POLL_SCHEDULE: "*/2 * * * * *",
      LOG_LEVEL: "debug",
      ...extra,
    });

  let procSeq = 0;
  const start = (command: "once" | "run", kind: Kind | "final", env: Record<string, string>): Proc => {
    const running = startCli([command], env);
    const proc: Proc = { id: ++procSeq, command, kind, running, exited: false, startedAt: Date.now() };
    void running.finished.then((r) => {
      proc.exited = true;
      proc.result = r;
    });
    procs.push(proc);
    return proc;
  };
  const signal = (proc: Proc, sig: NodeJS.Signals): boolean => {
    if (proc.exited || proc.signalSent) {
      return false;
    }
    proc.signalSent = sig;
    proc.signalAt = Date.now();
    proc.running.child.kill(sig);
    return true;
  };
  const logsOf = (proc: Proc) => {
    const text = proc.result?.stdout ?? "";
    return text;
  };
  /** Waits for the process to end; kills it (and records a hang) past the watchdog. */
  const finish = async (proc: Proc, watchdogMs: number): Promise<Finished> => {
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      proc.running.finished,
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), watchdogMs))),
    ]);
    clearTimeout(timer);
    if (done) {
      return done;
    }
    problems.push(
      `${proc.command} #${proc.id} (${proc.kind}) still running after ${watchdogMs} ms${proc.signalSent ? ` despite ${proc.signalSent} sent ${(proc.signalAt ?? 0) - proc.startedAt} ms after start` : ""}: killed`,
    );
    proc.running.child.kill("SIGKILL");
    return proc.running.finished;
  };
  /** Judges one process's exit. `allowed` lists acceptable exit codes when it ended on its own. */
  const judge = (proc: Proc, r: Finished, allowed: number[]) => {
    const outcome = r.signal ?? String(r.code);
    exits[outcome] = (exits[outcome] ?? 0) + 1;
    const what = `${proc.command} #${proc.id} (${proc.kind})`;
    if (proc.signalSent === "SIGKILL" && r.signal === "SIGKILL") {
      signals.SIGKILL++;
      return;
    }
    if (proc.signalSent === "SIGTERM") {
      if (r.code === 0) {
        signals.SIGTERM++;
        const ms = Date.now() - (proc.signalAt ?? Date.now());
        // A hung shutdown is a failure; a slow one on a loaded 2-core machine is not (cli.test.ts checks latency).
        if (ms > 25_000) {
          problems.push(`${what}: SIGTERM took ${ms} ms to exit`);
        }
        return;
      }
      if (r.signal === "SIGTERM" && !r.stdout.includes("{")) {
        // Delivered before the daemon had installed its handlers (still loading modules): Node's default action.
        // Nothing had been read or written; noted, not a failure.
        count("note: SIGTERM before the handlers were installed");
        return;
      }
      // It may have finished on its own just before the signal arrived.
      if (!(r.code !== null && allowed.includes(r.code) && !r.logs.some((l) => l.msg === "shutting down"))) {
        problems.push(`${what}: exit ${outcome} after SIGTERM (expected 0)\n${tail(r)}`);
      }
      return;
    }
    if (r.signal !== null || r.code === null || !allowed.includes(r.code)) {
      problems.push(`${what}: exit ${outcome}, expected ${allowed.join(" or ")}\n${tail(r)}`);
    }
  };
  /** Counts the simulator faults that fired (each one hit a request). Returns how many. */
  const faultsFired = (): number => {
    let n = 0;
    for (const rec of sim.requests()) {
      if (!rec.fault) {
        continue;
      }
      const what =
        rec.fault === "status"
          ? rec.status === 429
            ? "429"
            : rec.status >= 500
              ? "5xx"
              : String(rec.status)
          : rec.fault;
      count(`${rec.kind === "token" ? "token" : "graph"} ${what}`);
      n++;
    }
    return n;
  };
  const setReadOnly = async (on: boolean) => {
    await admin.query(
      on
        ? "alter database faults set default_transaction_read_only = on"
        : "alter database faults reset default_transaction_read_only",
    );
    await admin.query(
      "select pg_terminate_backend(pid) from pg_stat_activity where datname = 'faults' and application_name like 'signin-ingest%'",
    );
  };
  const setDiskFull = async (on: boolean) => {
    if (on) {
      await direct.query(`
        begin read write;
        create or replace function faults_disk_full() returns trigger language plpgsql as $$
        begin raise exception 'could not extend file: No space left on device (campaign)' using errcode = '53100'; end $$;
        create trigger faults_disk_full before insert on sign_ins for each row execute function faults_disk_full();
        commit;`);
    } else {
      // In a read-write transaction: a read-only episode may have left the checker's session read-only.
      await direct.query("begin read write; drop trigger if exists faults_disk_full on sign_ins; commit");
    }
  };
  const restartCluster = async () => {
    await cluster.stop();
    await sleep(rand(0, 1500));
    await cluster.start();
  };
  const graphCalls = () => sim.requests().filter((r) => r.kind !== "other").length;
  const checkpointNow = async (): Promise<number | undefined> =>
    (
      await direct.query<{ position: Date }>(
        "select position from checkpoints where tenant_id = $1 and stream = 'interactiveUser'",
        [sim.tenantId],
      )
    ).rows[0]?.position.getTime();
  /** Publishes one poison event of each sort, created in the last 35..12 s and visible from inside that window. */
  const publishPoison = async (tag: string): Promise<Date> => {
    // From the earlier of Graph's clock and the host's, which the daemon plans from: with Graph's ahead (forward
    // clock-skew steps), events 12 s behind Graph's clock could lie past every window a correct daemon may read yet
    // (a false "stalled" in the full campaign, seed 7).
    const now = Math.min(sim.now().getTime(), Date.now());
    const window = { from: new Date(now - 35_000), to: new Date(now - 12_000) };
    const poison = poisonEvents(window, tag, options.seed);
    const res = await fetch(`${sim.url}/_admin/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ events: poison.map((p) => p.event), visibleAt: new Date(now - 14_000).toISOString() }),
    });
    if (!res.ok) {
      throw new Error(`POST /_admin/events: ${res.status} ${await res.text()}`);
    }
    poisonPublished.push(...poison);
    count("poison events", poison.length);
    return window.to;
  };

  /**
   * While Date headers say 2001, a cycle's windows must still be planned from a real clock: its `planned_at` lies
   * between the earlier of host and Graph time at the process's start (less the Date header's truncated second) and
   * the later of the two now. Says what is wrong, or undefined. (Whether the checkpoint moves is no test of this:
   * after a backward clock-skew step, or a cycle planned from a host clock ahead of Graph's, a correct run can end
   * its window at or before the stored checkpoint.)
   */
  const wrongPlan = (
    cycle: Record<string, unknown> | undefined,
    clocksAtStart: { host: number; graph: number },
  ): string | undefined => {
    const plannedAt = typeof cycle?.planned_at === "string" ? Date.parse(cycle.planned_at) : Number.NaN;
    const earliest = Math.min(clocksAtStart.host, clocksAtStart.graph) - 1000;
    const latest = Math.max(Date.now(), sim.now().getTime());
    return plannedAt >= earliest && plannedAt <= latest
      ? undefined
      : `windows planned from ${iso(plannedAt)} while Date headers said 2001 (host ${iso(clocksAtStart.host)}, Graph ${iso(clocksAtStart.graph)} at start)`;
  };
  /**
   * The new kinds' (issue 12) demands on a `once` that met them; narrows `allowed` (the exit codes judge accepts)
   * and records problems.
   */
  const checkOnce = async (
    kind: Kind,
    proc: Proc,
    r: Finished,
    allowed: number[],
    at: {
      poisonTo: Date | undefined;
      /** Host and Graph (simulator) clocks as the process started. */
      clocksAtStart: { host: number; graph: number };
    },
  ) => {
    const records = sim.requests();
    const faultAt = records.findIndex((rec) => rec.fault !== undefined);
    const what = `once #${proc.id} (${kind})`;
    const only = (...codes: number[]) => allowed.splice(0, allowed.length, ...codes);
    const after = kind === "past-date" || kind === "poison" ? await checkpointNow().catch(() => undefined) : undefined;
    switch (kind) {
      case "oversized":
        if (faultAt >= 0) {
          only(75);
          if (!r.logs.some((l) => JSON.stringify(l).includes("Malformed"))) {
            problems.push(`${what}: no malformed-page failure logged for an oversized page`);
          }
        }
        break;
      case "retry-after-huge":
        only(0);
        if (faultAt >= 0 && !records.slice(faultAt + 1).some((rec) => rec.kind === "graph")) {
          problems.push(`${what}: no Graph request after a 429 with a huge Retry-After (tenant silenced)`);
        }
        if (records.length > 500) {
          problems.push(`${what}: ${records.length} requests after a huge Retry-After (busy loop?)`);
        }
        break;
      case "past-date": {
        only(0);
        const wrong = wrongPlan(
          r.logs.find((l) => l.msg === "cycle complete" && l.stream === "interactiveUser"),
          at.clocksAtStart,
        );
        if (wrong) {
          problems.push(`${what}: ${wrong}; checkpoint now ${iso(after)}\n${cycleLines(r)}`);
        }
        break;
      }
      case "poison":
        only(0);
        if (at.poisonTo && (after === undefined || after < at.poisonTo.getTime())) {
          problems.push(
            `${what}: the checkpoint did not move past the poison events (stalled): checkpoint ${iso(after)}, poison up to ${iso(at.poisonTo.getTime())}, Graph's clock ${Math.round((sim.now().getTime() - Date.now()) / 1000)} s from the host's\n${cycleLines(r)}`,
          );
        }
        break;
      case "bi-squatter":
        only(0);
        if (!r.logs.some((l) => l.msg === "cycle complete" && l.stream === "interactiveUser")) {
          problems.push(`${what}: interactiveUser was not polled while a BI login squatted`);
        }
        break;
      default:
        break;
    }
  };

  /** Runs one episode; true when its fault really happened. */
  const runEpisode = async (kind: Kind): Promise<boolean> => {
    let own = false;
    sim.resetRequests();
    sim.setFaults([]);
    const command: "once" | "run" = chance(0.4) ? "run" : "once";
    const extra: Record<string, string> = {};
    const allowed = [0, 75];
    let faults: FaultRule[] | undefined;
    // The request a Graph fault starts at. The short campaign (everyKind) keeps it early: a `once` right after the
    // previous episode may read only a page or two, and a fault it never meets costs a retry of the whole kind.
    const k = rand(1, options.everyKind ? 2 : 5);
    switch (kind) {
      case "sigkill-inflight":
        faults = [{ match: { requestNumber: k }, kind: "hang", ms: 8000 }];
        break;
      case "sigterm-retry-after":
        faults = [{ match: { requestNumber: k }, kind: "status", status: 429, retryAfter: "30" }];
        extra.MAX_RETRY_AFTER = "60s";
        break;
      case "graph-reset":
        faults = chance(0.25)
          ? [{ match: { token: true, requestNumber: 1 }, kind: "reset" }]
          : [
              {
                match: { from: k },
                kind: "reset",
                ...(chance(0.7) ? { afterBytes: rand(0, 6000) } : {}),
                times: rand(1, 2),
              },
            ];
        break;
      case "graph-hang":
        faults = [{ match: { from: k }, kind: "hang", ...(chance(0.5) ? { ms: 5000 } : {}), times: rand(1, 2) }];
        break;
      case "429-storm":
        faults = [
          {
            match: { from: k },
            kind: "status",
            status: 429,
            ...(chance(0.8) ? { retryAfter: String(rand(0, 1)) } : {}),
            times: rand(2, 5),
          },
        ];
        break;
      case "5xx-run":
        faults = [
          { match: { from: k }, kind: "status", status: [500, 502, 503, 504][rand(0, 3)] ?? 503, times: rand(1, 5) },
        ];
        break;
      case "expire-token":
        faults = [{ match: { requestNumber: k }, kind: "expire-token" }];
        break;
      case "malformed":
        faults = [
          {
            match: { from: k },
            kind: (["malformed", "truncate", "html", "no-value"] as const)[rand(0, 3)] ?? "malformed",
            times: rand(1, 5),
          },
        ];
        break;
      case "pg-down-at-start":
        extra.DATABASE_WAIT = "1s";
        break;
      case "oversized":
        // Over the byte cap (MAX_PAGE_BYTES), or under it with far more items than $top (maxPageEvents).
        faults = [
          {
            match: { from: k },
            kind: "oversized",
            bytes: chance(0.5) ? 60_000_000 : rand(3_000, 200_000),
            times: 1,
          },
        ];
        break;
      case "retry-after-huge":
        faults = [
          {
            match: { from: k },
            kind: "status",
            status: 429,
            retryAfter: (["3600", "2200000", "Fri, 01 Jan 2100 00:00:00 GMT"] as const)[rand(0, 2)] ?? "3600",
            times: 1,
          },
        ];
        break;
      case "past-date":
        faults = [
          chance(0.5)
            ? { match: { token: true }, kind: "date", date: PAST_DATE }
            : { match: { from: rand(2, 5) }, kind: "date", date: PAST_DATE, times: rand(1, 4) },
        ];
        break;
      case "pg-blackhole":
        extra.LEASE_TTL = `${LEASE_TTL_S}s`;
        extra.LEASE_HEARTBEAT = "1s";
        break;
      default:
        break;
    }
    if (faults && command === "once") {
      sim.setFaults(faults);
    }

    // Faults present before the process starts.
    let realStop = false;
    if (kind === "pg-down-at-start") {
      realStop = chance(0.3);
      if (realStop) {
        await cluster.stop();
      } else {
        proxy.setMode("refuse");
      }
    }
    let poisonTo: Date | undefined;
    if (kind === "poison") {
      poisonTo = await publishPoison(`poison-${options.seed}-${episodes}`);
      own = true;
    }
    let squat: { login: Awaited<ReturnType<typeof createReaderLogin>>; squatter: Squatter } | undefined;
    if (kind === "bi-squatter") {
      // A BI login (signin_reader) holds every lock it can get and poses as replicas; nothing of it may stop a stream.
      const login = await createReaderLogin(adminUrl, dbUrl);
      const squatter = await startLockSquatter(
        login.url,
        STREAM_NAMES.map((stream) => ({ tenantId: sim.tenantId, stream })),
        { partitionLock: chance(0.5) },
      );
      squat = { login, squatter };
      own = squatter.attempts.some((a) => a.allowed);
      count("bi-squatter", own ? 1 : 0);
    }
    let killedAt: "before" | "after" | undefined;
    const clocksAtStart = { host: Date.now(), graph: sim.now().getTime() };
    const proc = start(command, kind, baseEnv(extra));
    if (kind === "pg-down-at-start") {
      const r = await finish(proc, 20_000);
      judge(proc, r, [75]);
      if (r.code === 75) {
        count("pg-down-at-start");
        own = true;
      }
      const calls = graphCalls();
      if (calls > 0) {
        problems.push(`${command} #${proc.id}: ${calls} Graph/token requests while PostgreSQL was down`);
      }
      if (realStop) {
        await cluster.start();
      } else {
        proxy.setMode("pass");
      }
      return own;
    }
    // Run daemons meet their faults mid-run: let the first cycle start.
    if (command === "run") {
      await waitFor(() => proc.exited || proc.running.child.stdout !== null, 100);
      await sleep(rand(300, 2500));
      if (faults) {
        sim.setFaults(faults);
      }
    }

    let healAt = Date.now();
    switch (kind) {
      case "sigkill-inflight": {
        // Kill while request k (hanging) is in flight.
        const hung = await waitFor(() => proc.exited || sim.requests().some((r) => r.fault === "hang"), 15_000);
        own = hung && !proc.exited && signal(proc, "SIGKILL");
        if (own) {
          count("kill: SIGKILL while a page is in flight");
        }
        break;
      }
      case "sigkill-random":
        await sleep(rand(0, 2500));
        own = signal(proc, "SIGKILL");
        break;
      case "sigkill-commit": {
        const when = chance(0.5) ? "before" : "after";
        proxy.armCommitHook(
          when,
          (w) => {
            killedAt = w;
            signal(proc, "SIGKILL");
          },
          rand(0, 3),
        );
        await waitFor(() => proc.exited || killedAt !== undefined, 15_000);
        proxy.disarm();
        if (killedAt) {
          count(`kill: SIGKILL ${killedAt} COMMIT`);
          own = true;
        }
        break;
      }
      case "sigterm":
        await sleep(rand(0, 2500));
        own = signal(proc, "SIGTERM");
        break;
      case "sigterm-retry-after": {
        await waitFor(() => proc.exited || sim.requests().some((r) => r.status === 429), 15_000);
        await sleep(rand(50, 400));
        if (signal(proc, "SIGTERM")) {
          count("kill: SIGTERM during a Retry-After wait");
          own = true;
        }
        break;
      }
      case "pg-restart": {
        // Drawn once, before polling: a draw per poll would make the faults depend on timing, not on the seed.
        const threshold = rand(1, 4);
        await waitFor(() => proc.exited || sim.requests().length > threshold, 8000);
        if (!proc.exited) {
          await restartCluster();
          count("pg-restart");
          own = true;
        }
        break;
      }
      case "pg-reset": {
        // Drawn once, before polling: a draw per poll would make the faults depend on timing, not on the seed.
        const threshold = rand(1, 5);
        await waitFor(() => proc.exited || sim.requests().length > threshold, 8000);
        if (!proc.exited) {
          own = proxy.resetAll() > 0;
          count("pg-reset", own ? 1 : 0);
        }
        break;
      }
      case "commit-drop": {
        const before = proxy.counters.commitDrops;
        proxy.armCommitDrop(chance(0.5) ? "unknown" : "reply-lost", rand(0, 3));
        await waitFor(() => proc.exited || proxy.counters.commitDrops > before, 15_000);
        proxy.disarm();
        count("commit-drop", proxy.counters.commitDrops - before);
        own = proxy.counters.commitDrops > before;
        break;
      }
      case "pg-blackhole": {
        // Drawn once, before polling: a draw per poll would make the faults depend on timing, not on the seed.
        const threshold = rand(1, 4);
        await waitFor(() => proc.exited || sim.requests().length > threshold, 8000);
        if (!proc.exited) {
          // Held longer than LEASE_TTL: the daemon must notice (heartbeats), `once` fail with 75, and a SIGTERM
          // during it end `run` with 0 without waiting for PostgreSQL.
          proxy.setMode("blackhole");
          count("pg-blackhole");
          own = true;
          await sleep(1000);
          if (command === "once" && !proc.exited) {
            allowed.splice(0, allowed.length, 75);
          }
          await sleep(rand(LEASE_TTL_S * 1000, LEASE_TTL_S * 1000 + 2500));
          if (command === "run" && chance(0.5) && signal(proc, "SIGTERM")) {
            count("kill: SIGTERM while PostgreSQL is blackholed");
            const r = await finish(proc, 30_000);
            if (r.code === 0) {
              blackholeSigtermMs.push(Date.now() - (proc.signalAt ?? Date.now()));
            }
          }
          proxy.setMode("pass");
        }
        break;
      }
      case "clock-skew": {
        // Graph's clock (relative to the host's) changes: mostly forward jumps, and backward steps no longer than
        // SETTLE (see docs/faults.md: a larger backward step stands for a host clock stepping forward, which the
        // daemon cannot see until Graph's next response).
        offsetMs = Math.min(120_000, offsetMs + rand(-(SETTLE_S - 2), 45) * 1000);
        maxOffsetMs = Math.max(maxOffsetMs, offsetMs);
        sim.setClockOffset(offsetMs);
        count("clock-skew");
        own = true;
        await sleep(rand(500, 3000));
        break;
      }
      case "read-only":
        await setReadOnly(true);
        count("read-only");
        own = true;
        await sleep(rand(1000, 3000));
        await setReadOnly(false);
        break;
      case "disk-full":
        await setDiskFull(true);
        count("disk-full");
        own = true;
        await sleep(rand(1000, 3000));
        await setDiskFull(false);
        break;
      case "past-date":
        if (command === "run") {
          // Windows keep being planned from a real clock while the Date headers lie (see checkOnce).
          const since = Date.now();
          const cycle = await proc.running
            .waitForLog(
              (l) => l.msg === "cycle complete" && l.stream === "interactiveUser" && Date.parse(String(l.time)) > since,
              25_000,
            )
            .catch(() => undefined);
          const wrong = cycle ? wrongPlan(cycle, clocksAtStart) : "no cycle completed within 25 s";
          if (wrong) {
            problems.push(`run #${proc.id} (past-date): ${wrong}`);
          }
        } else {
          await waitFor(() => proc.exited, ONCE_WATCHDOG_MS);
        }
        break;
      default:
        // Graph faults (and poison events, a BI squatter): let the daemon meet them.
        await waitFor(() => proc.exited, command === "once" ? ONCE_WATCHDOG_MS : rand(1500, 4000));
        break;
    }
    healAt = Date.now();
    if (command === "run" && !proc.exited && !proc.signalSent) {
      // The daemon must recover by itself once the fault is gone: a cycle that starts after healing completes.
      if (MUST_RECOVER.has(kind) || chance(0.5)) {
        sim.setFaults([]);
        const recovered = await proc.running
          .waitForLog((l) => l.msg === "cycle complete" && Date.parse(String(l.time)) > healAt, 25_000)
          .then(
            () => true,
            () => proc.exited,
          );
        if (!recovered) {
          problems.push(`run #${proc.id}: no successful cycle within 25 s after ${kind} was healed`);
        }
      }
      signal(proc, chance(0.6) ? "SIGKILL" : "SIGTERM");
    }
    const r = await finish(proc, proc.signalSent ? 30_000 : ONCE_WATCHDOG_MS);
    if (command === "once" && !proc.signalSent) {
      await checkOnce(kind, proc, r, allowed, { poisonTo, clocksAtStart });
    }
    judge(proc, r, command === "run" ? [] : allowed);
    if (squat) {
      await squat.squatter.close();
      await squat.login.drop().catch((error: unknown) => problems.push(`dropping the BI login: ${String(error)}`));
    }
    const graphFaults = faultsFired();
    if (GRAPH_KINDS.has(kind)) {
      own = graphFaults > 0;
    }
    sim.setFaults([]);
    proxy.disarm();
    proxy.setMode("pass");
    if (!cluster.db) {
      await cluster.start();
    }
    return own;
  };

  const started = Date.now();
  let episodes = 0;
  const episode = async (kind: Kind) => {
    episodes++;
    episodeRng = mulberry32((options.seed ^ Math.imul(episodes, 0x9e3779b1)) >>> 0);
    const t0 = Date.now();
    const before = procs.length;
    if (await runEpisode(kind)) {
      fired[kind] = (fired[kind] ?? 0) + 1;
    }
    if (options.verbose) {
      const p = procs[before];
      say(
        `  ${episodes} ${kind} ${p?.command ?? "-"} → ${p?.result?.signal ?? p?.result?.code ?? "?"} in ${Date.now() - t0} ms; ${
          (p?.result?.logs ?? []).filter((l) => l.msg === "cycle complete").length
        } cycles; fired ${fired[kind] ?? 0}`,
      );
    } else if (episodes % 20 === 0) {
      say(`  … ${episodes} episodes, ${Math.round((Date.now() - started) / 1000)} s, problems ${problems.length}`);
    }
  };
  try {
    if (options.everyKind) {
      // Each kind once (in a seeded order), then again for any whose fault did not happen (the daemon was faster).
      const order = [...ALL_KINDS].sort(() => rng() - 0.5);
      // Bounded by rounds, not by the clock: on a loaded machine episodes are slower, and every kind must still
      // be tried (and retried) rather than cut off by a wall-time budget.
      for (let round = 0; round < 3; round++) {
        for (const kind of order) {
          if (!fired[kind]) {
            await episode(kind);
          }
        }
      }
    } else {
      while (Date.now() - started < options.durationMs) {
        await episode(pickKind());
      }
    }

    // Heal everything and recover.
    sim.setFaults([]);
    proxy.disarm();
    proxy.setMode("pass");
    if (!cluster.db) {
      await cluster.start();
    }
    await admin.query("alter database faults reset default_transaction_read_only");
    await setDiskFull(false);
    clearInterval(publisher);
    // Graph's clock must end at its furthest point, so that every event it ever showed is visible to the checker.
    sim.setClockOffset(maxOffsetMs);
    // The stall check needs a final cycle whose window can pass the last published events: wait until Graph's
    // clock and the host's (the daemon plans from the earlier of the two) are SETTLE past them. With Graph's clock
    // ahead of the host's (forward clock-skew steps), the host's is the one to wait for: waiting for Graph's alone
    // let the final cycle end its window up to the offset before the last events (a false "stalled", found by the
    // full campaign, seed 7).
    const publishedUpTo = lastPublishedAt.getTime();
    await waitFor(
      () => Math.min(Date.now(), sim.now().getTime()) >= publishedUpTo + (SETTLE_S + 1) * 1000,
      (SETTLE_S + 5) * 1000 + Math.max(0, maxOffsetMs),
      200,
    );
    let finalAt: Date | undefined;
    for (let attempt = 1; attempt <= 8 && !finalAt; attempt++) {
      const at = sim.now();
      const proc = start("once", "final", baseEnv());
      const r = await finish(proc, ONCE_WATCHDOG_MS);
      judge(proc, r, [0, 75]);
      if (r.code === 0) {
        finalAt = at;
      } else {
        await sleep(1000);
      }
    }
    if (!finalAt) {
      problems.push("the final `once` never succeeded");
    }
    await sleep(200);
    sampling = false;
    await sampler;

    // The checker (H5).
    const allLogs = procs.map(logsOf);
    const completes = procs.flatMap((p) => (p.result?.logs ?? []).filter((l) => l.msg === "cycle complete"));
    const starts = completes
      .map((l) => String(l.window_from))
      .filter((s) => s !== "undefined")
      .sort();
    const checkpoint = (
      await direct.query<{ position: Date }>(
        "select position from checkpoints where tenant_id = $1 and stream = 'interactiveUser'",
        [sim.tenantId],
      )
    ).rows[0]?.position;
    const rows = (
      await direct.query<{ id: string; raw: Record<string, unknown> }>(
        "select id, raw from sign_ins where tenant_id = $1",
        [sim.tenantId],
      )
    ).rows;
    // Poison events: each "stored" one stored once (like any event), each "rejected" one in rejected_events.
    const rejectedPoison = new Set(poisonPublished.filter((p) => p.expect === "rejected").map((p) => String(p.id)));
    let poisonRejected = 0;
    for (const p of poisonPublished) {
      if (p.expect === "rejected") {
        const found = await direct.query<{ reason: string }>(
          "select reason from rejected_events where raw_text like '%' || $1 || '%'",
          [p.marker],
        );
        const reasons = found.rows.map((row) => row.reason);
        if (reasons.length === 0) {
          problems.push(`poison ${p.kind} (${p.marker}) is not in rejected_events`);
        } else if (p.reason && !reasons.some((reason) => p.reason?.test(reason))) {
          problems.push(`poison ${p.kind} rejected with reason ${reasons.join("; ")}, expected ${String(p.reason)}`);
        } else {
          poisonRejected++;
        }
      } else {
        const n = rows.filter((row) => row.id === p.id).length;
        if (n !== 1) {
          problems.push(`poison ${p.kind} (${p.id}) stored ${n} times, expected once`);
        }
      }
    }
    // Stalled streams: the final `once` succeeded after Graph's clock passed the last published events by SETTLE,
    // so a stream that still moves has its checkpoint past them, and its last outcome is a success.
    const configured = [{ tenantId: sim.tenantId, stream: "interactiveUser" }];
    const status = finalAt ? await runCli(["status", "--json"], baseEnv()) : undefined;
    let statusRows: Array<{ tenantId?: string; stream?: string; lastOutcome?: string | null }> = [];
    try {
      statusRows = status ? (JSON.parse(status.stdout) as typeof statusRows) : [];
    } catch {
      problems.push(`status --json printed no JSON (exit ${status?.code}): ${status?.stdout.slice(0, 300)}`);
    }
    let stalled = 0;
    for (const c of configured) {
      const row = statusRows.find((x) => x.tenantId === c.tenantId && x.stream === c.stream);
      const behind = !finalAt || !checkpoint || checkpoint.getTime() <= publishedUpTo;
      if (behind || row?.lastOutcome !== "success") {
        stalled++;
        problems.push(
          `stream ${c.stream} stalled: checkpoint ${checkpoint?.toISOString() ?? "none"}, last events published at ${new Date(publishedUpTo).toISOString()}, status last outcome ${row?.lastOutcome ?? "(not listed)"}`,
        );
      }
    }
    const storedById = new Map<string, Record<string, unknown>>();
    let duplicates = 0;
    for (const row of rows) {
      if (storedById.has(row.id)) {
        duplicates++;
      }
      storedById.set(row.id, row.raw);
    }
    const firstFrom = starts[0];
    const expectedIds: string[] = [];
    let stale = 0;
    const staleIds: string[] = [];
    if (finalAt && checkpoint && firstFrom) {
      const lo = sevenDigits(new Date(firstFrom).toISOString());
      const hi = sevenDigits(checkpoint.toISOString());
      for (const e of sim.visibleEvents(sim.tenantId, finalAt)) {
        const at = sevenDigits(String(e.createdDateTime));
        const id = String(e.id);
        if (!isInteractive(e) || at < lo || at > hi || e.id === undefined || rejectedPoison.has(id)) {
          continue;
        }
        expectedIds.push(id);
        const raw = storedById.get(id);
        if (raw && !isDeepStrictEqual(raw, asRead(e))) {
          stale++;
          staleIds.push(id);
        }
      }
    } else {
      problems.push("no complete cycle or no checkpoint: nothing to check against");
    }
    const lostIds = expectedIds.filter((id) => !storedById.has(id));
    const everVisible = new Set(sim.visibleEvents(sim.tenantId).map((e) => String(e.id)));
    const phantoms = [...storedById.keys()].filter((id) => !everVisible.has(id)).length;
    if (stale > 0 && options.verbose) {
      for (const id of staleIds.slice(0, 3)) {
        const e = sim.visibleEvents(sim.tenantId, finalAt).find((x) => x.id === id);
        say(
          `stale ${id}: stored ${JSON.stringify(storedById.get(id)).slice(0, 2000)}\n  simulator ${JSON.stringify(e ? asRead(e) : null).slice(0, 2000)}`,
        );
        const r = await direct.query(
          "select first_seen_at, last_changed_at, revision, created_date_time from sign_ins where id = $1",
          [id],
        );
        say(`  row ${JSON.stringify(r.rows)}`);
      }
    }
    if (stale > 0) {
      problems.push(
        `${stale} stored rows are older than the simulator's latest version: ${staleIds.slice(0, 5).join(", ")}`,
      );
    }
    if (phantoms > 0) {
      problems.push(`${phantoms} stored rows the simulator never showed`);
    }
    const canaries = [secret, dbPassword, ...sim.issuedTokens()];
    let secretHits = 0;
    for (const text of [...allLogs, ...procs.map((p) => p.result?.stderr ?? "")]) {
      for (const canary of canaries) {
        secretHits += text.split(canary).length - 1;
      }
    }
    const injected =
      signals.SIGKILL +
      signals.SIGTERM +
      Object.entries(byKind)
        .filter(([k]) => !k.startsWith("kill:") && !k.startsWith("note:"))
        .reduce((sum, [, n]) => sum + n, 0);
    const missing = options.everyKind ? ALL_KINDS.filter((k) => !fired[k]) : [];
    const lost = lostIds.length;
    if (lost > 0) {
      problems.push(`lost ${lost} events, e.g. ${lostIds.slice(0, 5).join(", ")}`);
    }
    const line = `faults: seed ${options.seed}, injected ${injected}, expected ${expectedIds.length}, stored ${storedById.size}, lost ${lost}, duplicates ${duplicates}, checkpoint regressions ${regressions}, secrets in logs ${secretHits}, poison rejected ${poisonRejected}, stalled ${stalled}`;
    return {
      seed: options.seed,
      injected,
      byKind,
      episodes,
      sigkills: signals.SIGKILL,
      sigterms: signals.SIGTERM,
      fired,
      missing,
      processes: procs.length,
      exits,
      eventsPublished: published,
      republished,
      expected: expectedIds.length,
      stored: storedById.size,
      lost,
      duplicates,
      stale,
      phantoms,
      regressions,
      checkpointSamples: samples.length,
      secretHits,
      poisonPublished: poisonPublished.length,
      poisonRejected,
      stalled,
      blackholeSigtermMs,
      problems,
      lostIds,
      line,
      ok:
        problems.length === 0 &&
        lost === 0 &&
        duplicates === 0 &&
        regressions === 0 &&
        secretHits === 0 &&
        stalled === 0,
      workDir,
    };
  } finally {
    sampling = false;
    for (const p of procs) {
      if (!p.exited) {
        p.running.child.kill("SIGKILL");
      }
    }
    for (const c of cleanups) {
      await c().catch(() => undefined);
    }
    await sim.close().catch(() => undefined);
    await proxy.close().catch(() => undefined);
    await direct.end().catch(() => undefined);
    await admin.end().catch(() => undefined);
    await cluster.stop().catch(() => undefined);
    if (!options.keep) {
      await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

const iso = (ms: number | undefined) =>
  ms === undefined || !Number.isFinite(ms) ? "none" : new Date(ms).toISOString();

/** The log lines that say what a process planned and did (windows, checkpoints, cycles, warnings), for a problem. */
function cycleLines(r: Finished): string {
  return r.logs
    .filter(
      (l) => typeof l.level === "number" && (l.level >= 40 || /window|checkpoint|cycle|plan/i.test(String(l.msg))),
    )
    .slice(-25)
    .map((l) => `    ${JSON.stringify(l).slice(0, 400)}`)
    .join("\n");
}

function tail(r: Finished): string {
  const err = r.stderr.trim();
  const text =
    err.length > 0 ? err.split("\n").slice(0, 12).join("\n") : r.stdout.trim().split("\n").slice(-3).join("\n");
  return text
    .split("\n")
    .map((l) => `    ${l.slice(0, 400)}`)
    .join("\n");
}
