// Checkpoints (how far each tenant and stream is complete) and the history of cycles.

import { redactOptional } from "../redact.ts";
import type { Pool, PoolClient } from "./db.ts";

const READ_CHECKPOINT = `select position from checkpoints where tenant_id = $1 and stream = $2`;

// greatest(): a checkpoint never moves backwards, whoever writes it.
const WRITE_CHECKPOINT = `
insert into checkpoints as c (tenant_id, stream, position, updated_at) values ($1, $2, $3, $4)
on conflict (tenant_id, stream) do update
  set position = greatest(c.position, excluded.position), updated_at = excluded.updated_at`;

const RECORD_CYCLE = `
insert into cycles (tenant_id, stream, started_at, finished_at, outcome, window_from, window_to,
  pages, fetched, inserted, updated, unchanged, rejected, error)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`;

const READ_CHECKPOINTS = `select tenant_id, stream, position from checkpoints`;

/** Every (tenant, stream) checkpoint. */
export async function readCheckpoints(
  db: Pool | PoolClient,
): Promise<Array<{ tenantId: string; stream: string; position: Date }>> {
  const result = await db.query<{ tenant_id: string; stream: string; position: Date }>(READ_CHECKPOINTS);
  return result.rows.map((r) => ({ tenantId: r.tenant_id, stream: r.stream, position: r.position }));
}

export async function readCheckpoint(
  db: Pool | PoolClient,
  tenantId: string,
  stream: string,
): Promise<Date | undefined> {
  const result = await db.query<{ position: Date }>(READ_CHECKPOINT, [tenantId, stream]);
  return result.rows[0]?.position;
}

export async function writeCheckpoint(
  client: PoolClient,
  tenantId: string,
  stream: string,
  position: Date,
  at: Date,
): Promise<void> {
  await client.query(WRITE_CHECKPOINT, [tenantId, stream, position, at]);
}

/** How a cycle ended. A target beyond this replica's fair share runs no cycle, so it has no row (readiness calls it
 * "skipped"). */
export type CycleOutcome = "success" | "failure";

export interface CycleRecord {
  tenantId: string;
  stream: string;
  startedAt: Date;
  finishedAt: Date;
  outcome: CycleOutcome;
  windowFrom: Date | undefined;
  windowTo: Date | undefined;
  pages: number;
  fetched: number;
  inserted: number;
  updated: number;
  unchanged: number;
  rejected: number;
  error: string | undefined;
}

export async function recordCycle(db: Pool, cycle: CycleRecord): Promise<void> {
  await db.query(RECORD_CYCLE, [
    cycle.tenantId,
    cycle.stream,
    cycle.startedAt,
    cycle.finishedAt,
    cycle.outcome,
    cycle.windowFrom ?? null,
    cycle.windowTo ?? null,
    cycle.pages,
    cycle.fetched,
    cycle.inserted,
    cycle.updated,
    cycle.unchanged,
    cycle.rejected,
    // Readable by the BI role: whatever an error carries, no secret is stored (see src/redact.ts).
    redactOptional(cycle.error) ?? null,
  ]);
}
