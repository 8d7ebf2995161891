// `export`: writes stored events back out, oldest first, from a server-side cursor (one snapshot, a page of rows in
// memory at a time, the output's backpressure respected): JSON lines of events, or JSON lines of Graph pages.

import type { Writable } from "node:stream";

import { type Pool, withTransaction } from "../store/db.ts";

export type ExportFormat = "jsonl" | "graph-pages";
export const EXPORT_FORMATS: readonly ExportFormat[] = ["jsonl", "graph-pages"];
export const MAX_PAGE_SIZE = 1000;

export interface ExportOptions {
  pool: Pool;
  /** Only this tenant's events (default: every tenant's). */
  tenantId?: string;
  /** Events with their time (createdDateTime, or activityDateTime for directoryAudits) in [from, to). */
  from: Date;
  to: Date;
  format: ExportFormat;
  /** A sign-in stream (`interactiveUser`, …) or `directoryAudits`; default: every sign-in stream. */
  stream?: string;
  out: Writable;
  /** Events per Graph page (graph-pages) and per cursor fetch; 1..1000, default 1000. */
  pageSize?: number;
  signal?: AbortSignal;
}

export interface ExportResult {
  events: number;
  /** Pages written (graph-pages), or cursor fetches (jsonl). */
  pages: number;
}

/** The Graph `@odata.context` a page of this stream would carry. */
function odataContext(stream: string | undefined): string {
  const beta = stream !== undefined && !["interactiveUser", "directoryAudits"].includes(stream);
  const resource = stream === "directoryAudits" ? "directoryAudits" : "signIns";
  return `https://graph.microsoft.com/${beta ? "beta" : "v1.0"}/$metadata#auditLogs/${resource}`;
}

export async function exportEvents(options: ExportOptions): Promise<ExportResult> {
  const pageSize = options.pageSize ?? MAX_PAGE_SIZE;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
    throw new RangeError(`pageSize must be an integer in 1..${MAX_PAGE_SIZE}, got ${pageSize}`);
  }
  const audits = options.stream === "directoryAudits";
  const table = audits ? "directory_audits" : "sign_ins";
  const time = audits ? "activity_date_time" : "created_date_time";
  const params: unknown[] = [options.from, options.to];
  let where = `${time} >= $1 and ${time} < $2`;
  if (options.tenantId !== undefined) {
    params.push(options.tenantId);
    where += ` and tenant_id = $${params.length}`;
  }
  if (options.stream !== undefined && !audits) {
    params.push(options.stream);
    where += ` and stream = $${params.length}`;
  }
  const context = JSON.stringify(odataContext(options.stream));
  const result: ExportResult = { events: 0, pages: 0 };
  // withTransaction: the client's 'error' listener (a PostgreSQL restart mid-export is an error, not a crash), and
  // the export's queries are cancelled on SIGTERM/SIGINT.
  await withTransaction(
    options.pool,
    async (client) => {
      await client.query("set transaction isolation level repeatable read, read only");
      // The output's reader sets the pace (`export | less` may pause for long): not an idle transaction to end.
      await client.query("set local idle_in_transaction_session_timeout = 0");
      // raw::text: PostgreSQL's rendering of the stored jsonb, written as is (no parse and re-serialise per event).
      await client.query(
        `declare signin_export no scroll cursor for
       select raw::text as raw from ${table} where ${where} order by ${time}, tenant_id, id`,
        params,
      );
      for (;;) {
        options.signal?.throwIfAborted();
        const rows = (await client.query<{ raw: string }>(`fetch forward ${pageSize} from signin_export`)).rows;
        if (rows.length === 0) {
          break;
        }
        const text =
          options.format === "jsonl"
            ? rows.map((r) => r.raw).join("\n") + "\n"
            : `{"@odata.context":${context},"value":[${rows.map((r) => r.raw).join(",")}]}\n`;
        await write(options.out, text);
        result.events += rows.length;
        result.pages++;
      }
    },
    options.signal ? { signal: options.signal } : {},
  );
  return result;
}

/** Writes and waits for the stream to take more (backpressure); rejects when the stream fails or closes. */
function write(out: Writable, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (out.destroyed || out.writableEnded) {
      reject(new Error("the output was closed"));
      return;
    }
    const onError = (error: Error): void => {
      out.off("drain", onDrain);
      reject(error);
    };
    const onDrain = (): void => {
      out.off("error", onError);
      resolve();
    };
    const ok = out.write(text, (error) => {
      if (error) {
        onError(error);
      }
    });
    if (ok) {
      resolve();
    } else {
      out.once("drain", onDrain);
      out.once("error", onError);
    }
  });
}
