// `signin-ingest simulate`: run the Microsoft Graph simulator in the foreground.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { validateRules } from "./faults.ts";
import { startSimulator } from "./server.ts";
import type { SimulatorMode, SimulatorOptions } from "./server.ts";

const SIMULATE_HELP = `Usage: node src/cli.ts simulate [options]

Starts a local stand-in for login.microsoftonline.com and graph.microsoft.com (one port) serving a
deterministic synthetic tenant's sign-in logs. Runs until SIGINT/SIGTERM.

Options:
  --port N                 listen port (default 0 = random)
  --host H                 listen address (default 127.0.0.1)
  --seed N                 universe seed (default 1)
  --tenant ID              accepted tenant id; repeat for several (default 00000000-0000-4000-8000-000000000001)
  --client-id ID           client id (default 11111111-1111-4111-8111-111111111111)
  --client-secret S        client secret (default sim-secret)
  --users N                synthetic users per tenant (default 50)
  --rate N                 interactive sign-ins per user per day (default 20)
  --history-days N         generated history before start (default 8)
  --no-generate            start with an empty universe (add events via POST /_admin/events)
  --latency P50,P99,MAX    arrival latency in seconds (default: visible immediately)
  --republish-rate F       fraction of events re-published later with changed content (default 0)
  --short-page-rate F      probability that a page is short (default 0)
  --throttle [T,A,W]       enable throttling: per-tenant, per-app, window ms (default when given: 5,122,10000)
  --page-latency-ms N      delay before each page (default 0)
  --clock-offset-ms N      simulator clock = now + N (default 0)
  --time-scale F           divide throttle windows and latencies by F (default 1)
  --mode M                 normal | no-licence | no-permission (default normal)
  --faults JSON|@FILE      fault rules, inline JSON array or @path to a JSON file
  --token-lifetime N       access token lifetime in seconds (default 3599)
  -h, --help               show this help

Admin (loopback only): GET/DELETE /_admin/requests, POST /_admin/events, GET /_admin/events,
POST /_admin/republish, PUT /_admin/faults, PUT /_admin/mode, PUT /_admin/clock, GET /_admin/health.
`;

function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) {
    return undefined;
  }
  const n = Number(v);
  if (!Number.isFinite(n)) {
    throw new Error(`--${name} must be a number, got "${v}"`);
  }
  return n;
}

/** Parses simulate flags into SimulatorOptions. Throws Error with a usage message on bad input. */
export function parseSimulateArgs(argv: string[]): SimulatorOptions | "help" {
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    options: {
      help: { type: "boolean", short: "h" },
      port: { type: "string" },
      host: { type: "string" },
      seed: { type: "string" },
      tenant: { type: "string", multiple: true },
      "client-id": { type: "string" },
      "client-secret": { type: "string" },
      users: { type: "string" },
      rate: { type: "string" },
      "history-days": { type: "string" },
      "no-generate": { type: "boolean" },
      latency: { type: "string" },
      "republish-rate": { type: "string" },
      "short-page-rate": { type: "string" },
      throttle: { type: "string" },
      "page-latency-ms": { type: "string" },
      "clock-offset-ms": { type: "string" },
      "time-scale": { type: "string" },
      mode: { type: "string" },
      faults: { type: "string" },
      "token-lifetime": { type: "string" },
    },
  });
  if (v.help) {
    return "help";
  }
  const o: SimulatorOptions = {};
  const set = <K extends keyof SimulatorOptions>(k: K, val: SimulatorOptions[K] | undefined): void => {
    if (val !== undefined) {
      o[k] = val;
    }
  };
  set("port", num(v.port, "port"));
  set("host", v.host);
  set("seed", num(v.seed, "seed"));
  set("tenants", v.tenant);
  if (v["client-id"] || v["client-secret"]) {
    o.clients = { [v["client-id"] ?? "11111111-1111-4111-8111-111111111111"]: v["client-secret"] ?? "sim-secret" };
  }
  set("users", num(v.users, "users"));
  set("signInsPerUserPerDay", num(v.rate, "rate"));
  set("historyDays", num(v["history-days"], "history-days"));
  if (v["no-generate"]) {
    o.generate = false;
  }
  if (v.latency !== undefined) {
    const [p50, p99, max] = v.latency.split(",").map((x) => num(x, "latency"));
    if (p50 === undefined || p99 === undefined) {
      throw new Error("--latency needs P50,P99[,MAX] seconds");
    }
    o.arrivalLatency = { p50Seconds: p50, p99Seconds: p99, maxSeconds: max ?? p99 * 4 };
  }
  set("republishRate", num(v["republish-rate"], "republish-rate"));
  const spr = num(v["short-page-rate"], "short-page-rate");
  if (spr !== undefined) {
    o.pageSize = { shortPageRate: spr };
  }
  if (v.throttle !== undefined) {
    const [t, a, w] = (v.throttle || "5,122,10000").split(",").map((x) => num(x, "throttle"));
    o.throttle = { perTenant: t ?? 5, perApp: a ?? 122, windowMs: w ?? 10_000 };
  }
  set("pageLatencyMs", num(v["page-latency-ms"], "page-latency-ms"));
  set("clockOffsetMs", num(v["clock-offset-ms"], "clock-offset-ms"));
  set("timeScale", num(v["time-scale"], "time-scale"));
  if (v.mode !== undefined) {
    if (!["normal", "no-licence", "no-permission"].includes(v.mode)) {
      throw new Error("--mode must be normal, no-licence or no-permission");
    }
    o.mode = v.mode as SimulatorMode;
  }
  if (v.faults !== undefined) {
    const text = v.faults.startsWith("@") ? readFileSync(v.faults.slice(1), "utf8") : v.faults;
    o.faults = validateRules(JSON.parse(text));
  }
  set("tokenLifetimeSeconds", num(v["token-lifetime"], "token-lifetime"));
  return o;
}

/** Runs the simulator until `signal` aborts. Prints the URL and env vars to stdout. */
export async function runSimulatorCli(
  argv: string[],
  io: { signal: AbortSignal; stdout?: NodeJS.WritableStream },
): Promise<void> {
  const out = io.stdout ?? process.stdout;
  const parsed = parseSimulateArgs(argv);
  if (parsed === "help") {
    out.write(SIMULATE_HELP);
    return;
  }
  // A stand-alone simulator shows people a realistic week (tests leave weekends as busy as weekdays).
  const sim = await startSimulator({ quietWeekends: true, ...parsed });
  out.write(
    `Microsoft Graph simulator listening on ${sim.url}\n` +
      `Point the daemon at it with:\n` +
      `  AZURE_AUTHORITY_HOST=${sim.url}\n  GRAPH_ENDPOINT=${sim.url}\n` +
      `  AZURE_TENANT_ID=${(parsed.tenants ?? [sim.tenantId]).join(",")}\n  AZURE_CLIENT_ID=${sim.clientId}\n  AZURE_CLIENT_SECRET=${sim.clientSecret}\n`,
  );
  if (!io.signal.aborted) {
    await new Promise<void>((resolve) => io.signal.addEventListener("abort", () => resolve(), { once: true }));
  }
  await sim.close();
  out.write("simulator stopped\n");
}

/**
 * Entry point used by cli.ts. Pass `signal` to control shutdown yourself; without one, SIGINT/SIGTERM
 * stop the simulator (listeners are added with once() and removed again on return).
 */
export async function simulateCommand(argv: string[], signal?: AbortSignal): Promise<void> {
  if (signal) {
    return runSimulatorCli(argv, { signal });
  }
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    await runSimulatorCli(argv, { signal: ac.signal });
  } finally {
    process.removeListener("SIGINT", stop);
    process.removeListener("SIGTERM", stop);
  }
}
