// Fills a test database with simulator-generated sign-ins through the real write path (upsertSignIns, one
// transaction per page of 1000), then re-publishes the events the simulator re-publishes (changed raw → UPDATE).

import { after, before } from "node:test";

import type { ValidEvent } from "../../src/events/classify.ts";
import { type GenConfig, generateHour, HOUR_MS } from "../../src/simulator/generate.ts";
import { type Pool, type PoolClient, withTransaction } from "../../src/store/db.ts";
import { ensureMonths, ensurePartitions, monthsOf } from "../../src/store/partitions.ts";
import { upsertSignIns } from "../../src/store/signins.ts";
import { createTestDatabase, type TestDatabase } from "./db.ts";

export interface FixtureOptions {
  tenantId?: string;
  users?: number;
  days?: number;
  /** Exclusive end of the generated range (an hour boundary). */
  end?: Date;
  seed?: number;
  /** Stores one page (default: upsertSignIns, the daemon's write path). */
  write?: PageWriter;
}

export type PageWriter = (
  client: PoolClient,
  tenantId: string,
  stream: string,
  page: ValidEvent[],
  seenAt: Date,
) => Promise<unknown>;

const daemonWrite: PageWriter = (c, tenantId, stream, page, seenAt) => upsertSignIns(c, tenantId, stream, page, seenAt);

export interface Fixture {
  tenantId: string;
  from: Date;
  to: Date;
  /** The final version of every stored event (after re-publication), as stored in raw. */
  events: Array<Record<string, unknown>>;
  republished: number;
}

export const PAGE_SIZE = 1000;

export function streamOf(raw: Record<string, unknown>): string {
  const types = raw.signInEventTypes;
  return Array.isArray(types) && typeof types[0] === "string" ? types[0] : "interactiveUser";
}

const toValid = (raw: Record<string, unknown>): ValidEvent => ({
  id: String(raw.id),
  createdDateTime: String(raw.createdDateTime),
  raw,
});

/** Upserts events grouped by stream, one transaction per page, as the daemon does. */
export async function upsertPages(
  pool: Pool,
  tenantId: string,
  events: ReadonlyArray<Record<string, unknown>>,
  seenAt: Date,
  write: PageWriter = daemonWrite,
): Promise<void> {
  // As the daemon does: the months' partitions first, in transactions of their own (migrations/0017).
  await ensureMonths(pool, monthsOf(events.map((e) => String(e.createdDateTime))));
  const byStream = new Map<string, ValidEvent[]>();
  for (const raw of events) {
    const stream = streamOf(raw);
    const list = byStream.get(stream) ?? [];
    list.push(toValid(raw));
    byStream.set(stream, list);
  }
  for (const [stream, list] of byStream) {
    for (let i = 0; i < list.length; i += PAGE_SIZE) {
      const page = list.slice(i, i + PAGE_SIZE);
      await withTransaction(pool, (c) => write(c, tenantId, stream, page, seenAt));
    }
  }
}

export async function loadSimulatedSignIns(pool: Pool, options: FixtureOptions = {}): Promise<Fixture> {
  const tenantId = options.tenantId ?? "11111111-2222-4333-8444-555555555555";
  const days = options.days ?? 7;
  const to = options.end ?? new Date("2026-03-09T00:00:00Z");
  const from = new Date(to.getTime() - days * 24 * HOUR_MS);
  const cfg: GenConfig = {
    seed: options.seed ?? 42,
    users: options.users ?? 150,
    signInsPerUserPerDay: 1.5,
    arrivalLatency: false,
    republishRate: 0.02,
  };
  await ensurePartitions(pool, from, to);
  const byId = new Map<string, Record<string, unknown>>();
  const republish: Array<Record<string, unknown>> = [];
  for (let hour = from.getTime() / HOUR_MS; hour < to.getTime() / HOUR_MS; hour++) {
    for (const ev of generateHour(cfg, tenantId, hour)) {
      byId.set(String(ev.obj.id), ev.obj);
      if (ev.republish) {
        republish.push({ ...ev.obj, ...ev.republish.patch });
      }
    }
  }
  await upsertPages(pool, tenantId, [...byId.values()], to, options.write);
  await upsertPages(pool, tenantId, republish, new Date(to.getTime() + HOUR_MS), options.write);
  for (const raw of republish) {
    byId.set(String(raw.id), raw);
  }
  await pool.query("analyze");
  return { tenantId, from, to, events: [...byId.values()], republished: republish.length };
}

/** A test file's database, filled by loadSimulatedSignIns before its tests and dropped after them. */
export function withSimulatedSignIns(options: FixtureOptions = {}): {
  readonly db: TestDatabase;
  readonly fx: Fixture;
} {
  const state = {} as { db: TestDatabase; fx: Fixture };
  before(async () => {
    state.db = await createTestDatabase();
    state.fx = await loadSimulatedSignIns(state.db.pool, options);
  });
  after(() => state.db.drop());
  return state;
}
