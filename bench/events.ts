// Benchmark events: interactive beta sign-ins from the simulator's generator (shaped and sized like real ones:
// ~7.9 KB of JSON, 10 applied Conditional Access policies of which 3 notEnabled, authenticationDetails, device,
// location …), cloned with fresh ids and times so any number can be made quickly. `small` strips them to the ~2.9 KB
// of a v1.0-like event (no CA policies, no authenticationDetails) for the small-event scenario.

import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { startSimulator } from "../src/simulator/server.ts";

export type BenchEvent = Record<string, unknown>;

const HEAVY_FIELDS = [
  "appliedConditionalAccessPolicies",
  "authenticationDetails",
  "authenticationProcessingDetails",
  "networkLocationDetails",
  "sessionLifetimePolicies",
  "appliedEventListeners",
  "authenticationMethodsUsed",
  "privateLinkDetails",
  "managedServiceIdentity",
  "tokenProtectionStatusDetails",
];

export async function templateEvents(small: boolean): Promise<BenchEvent[]> {
  const source = await startSimulator({ seed: 5, users: 300, signInsPerUserPerDay: 24, historyDays: 1 });
  const base = source
    .visibleEvents()
    .filter((e) => Array.isArray(e.signInEventTypes) && e.signInEventTypes[0] === "interactiveUser")
    .slice(0, 3000);
  await source.close();
  if (!small) {
    return base;
  }
  return base.map((e) => Object.fromEntries(Object.entries(e).filter(([k]) => !HEAVY_FIELDS.includes(k))));
}

/**
 * `count` events, oldest first, `spacingMs` apart and ending at `endMs`; a `gapMs` hole before the newest `newest`
 * (so a lookback that ends in the hole takes exactly the newest ones, whatever the seconds a process takes to start).
 */
export function cloneEvents(
  templates: readonly BenchEvent[],
  count: number,
  o: { spacingMs: number; endMs: number; newest: number; gapMs: number },
): BenchEvent[] {
  const events: BenchEvent[] = [];
  for (let i = count - 1; i >= 0; i--) {
    const template = templates[i % templates.length] as BenchEvent;
    const at = o.endMs - i * o.spacingMs - (i >= o.newest ? o.gapMs : 0);
    const id = randomUUID();
    events.push({
      ...template,
      id,
      originalRequestId: id,
      correlationId: randomUUID(),
      createdDateTime: new Date(at).toISOString().replace("Z", "0000Z"),
    });
  }
  return events;
}

export interface Shape {
  events: number;
  meanBytes: number;
  meanPolicies: number;
  notEnabledShare: number;
}

export function shapeOf(events: ReadonlyArray<BenchEvent>): Shape {
  let bytes = 0;
  let policies = 0;
  let notEnabled = 0;
  for (const e of events) {
    bytes += Buffer.byteLength(JSON.stringify(e));
    const ca = Array.isArray(e.appliedConditionalAccessPolicies)
      ? (e.appliedConditionalAccessPolicies as Array<{ result?: unknown }>)
      : [];
    policies += ca.length;
    notEnabled += ca.filter((p) => p.result === "notEnabled").length;
  }
  const n = Math.max(events.length, 1);
  return {
    events: events.length,
    meanBytes: bytes / n,
    meanPolicies: policies / n,
    notEnabledShare: policies ? notEnabled / policies : 0,
  };
}

/** The beta sign-ins of test/fixtures/real (real captures, trimmed by Microsoft's docs): the calibration reference. */
export function realFixtureShape(): Shape {
  const dir = fileURLToPath(new URL("../test/fixtures/real/", import.meta.url));
  const events: BenchEvent[] = [];
  for (const file of readdirSync(dir).filter((f) => /beta-signin.*\.json$/.test(f))) {
    const json = JSON.parse(readFileSync(dir + file, "utf8")) as { value?: BenchEvent[] } & BenchEvent;
    events.push(...(Array.isArray(json.value) ? json.value : [json]));
  }
  return shapeOf(events);
}
