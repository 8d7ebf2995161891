// The bench's databases (a migrated template cloned per measurement, on one server), COPY FROM STDIN through
// node-postgres' submittable interface (no extra dependency), and bytes on disk per relation group.

import { randomBytes } from "node:crypto";

import pg from "pg";
import { pino } from "pino";

import { migrate } from "../src/store/migrate.ts";
import { ensurePartitions } from "../src/store/partitions.ts";

export class Databases {
  readonly #base: string;
  readonly #names: string[] = [];
  readonly #template = `bench_tpl_${randomBytes(4).toString("hex")}`;
  readonly #keep: boolean;

  constructor(base: string, keep: boolean) {
    this.#base = base;
    this.#keep = keep;
  }

  url(name: string): string {
    const u = new URL(this.#base);
    u.pathname = `/${name}`;
    return u.toString();
  }

  get templateUrl(): string {
    return this.url(this.#template);
  }

  async #admin<T>(work: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = new pg.Client({ connectionString: this.#base });
    await c.connect();
    try {
      return await work(c);
    } finally {
      await c.end();
    }
  }

  async init(): Promise<void> {
    await this.#admin((c) => c.query(`create database ${this.#template}`));
    this.#names.push(this.#template);
    await migrate(this.url(this.#template), pino({ level: "silent" }));
  }

  /** A fresh migrated database; returns its URL. */
  async fresh(label: string): Promise<string> {
    const name = `bench_${label}_${randomBytes(4).toString("hex")}`;
    await this.#admin((c) => c.query(`create database ${name} template ${this.#template}`));
    this.#names.push(name);
    return this.url(name);
  }

  async drop(url: string): Promise<void> {
    if (this.#keep) {
      return;
    }
    const name = new URL(url).pathname.slice(1);
    await this.#admin((c) => c.query(`drop database if exists ${name} with (force)`));
    this.#names.splice(this.#names.indexOf(name), 1);
  }

  async dropAll(): Promise<void> {
    if (this.#keep) {
      return;
    }
    await this.#admin(async (c) => {
      for (const name of this.#names.reverse()) {
        await c.query(`drop database if exists ${name} with (force)`);
      }
    });
  }
}

export async function withClient<T>(url: string, work: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

class CopyIn {
  callback: ((err: Error | null) => void) | undefined;
  readonly #text: string;
  readonly #chunks: Iterable<Buffer>;
  #error: Error | undefined;
  rowCount = 0;
  readonly done: Promise<number>;
  #settle!: (error: Error | undefined) => void;

  constructor(text: string, chunks: Iterable<Buffer>) {
    this.#text = text;
    this.#chunks = chunks;
    this.done = new Promise((resolve, reject) => {
      this.#settle = (error) => (error ? reject(error) : resolve(this.rowCount));
    });
  }
  submit(connection: { query(text: string): void }): void {
    connection.query(this.#text);
  }
  handleCopyInResponse(connection: { sendCopyFromChunk(b: Buffer): void; endCopyFrom(): void }): void {
    for (const chunk of this.#chunks) {
      connection.sendCopyFromChunk(chunk);
    }
    connection.endCopyFrom();
  }
  handleCommandComplete(msg: { text?: string }): void {
    this.rowCount = Number(/(\d+)$/.exec(msg.text ?? "")?.[1] ?? 0);
  }
  handleError(error: Error): void {
    this.#error = error;
  }
  handleReadyForQuery(): void {
    this.callback?.(this.#error ?? null);
    this.#settle(this.#error);
  }
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}

/** COPY text format rows (tab-separated; JSON text has no raw tabs or newlines, only its backslashes need escaping). */
export function* copyChunks(rows: Iterable<string[]>): Generator<Buffer> {
  let buffer = "";
  for (const cells of rows) {
    buffer += cells.map((c) => c.replaceAll("\\", "\\\\")).join("\t") + "\n";
    if (buffer.length > 1 << 20) {
      yield Buffer.from(buffer);
      buffer = "";
    }
  }
  yield Buffer.from(buffer);
}

/** Runs `copy … from stdin` with the given chunks; returns the milliseconds the COPY took. */
export async function copyInto(client: pg.Client, sql: string, chunks: Buffer[], expected: number): Promise<number> {
  const started = performance.now();
  const copy = new CopyIn(sql, chunks);
  void client.query(copy as unknown as pg.QueryConfig);
  const rows = await copy.done;
  if (rows !== expected) {
    throw new Error(`COPY stored ${rows} rows, expected ${expected}`);
  }
  return performance.now() - started;
}

export async function ensureClientPartitions(client: pg.Client, from: Date, to: Date): Promise<void> {
  const pool = {
    connect: () => Promise.resolve(Object.assign(client, { release: () => undefined })),
  } as unknown as pg.Pool;
  await ensurePartitions(pool, from, to);
}

/** Bytes on disk of every table of the schema (heap, TOAST, indexes, FSM/VM), by group. */
export interface SchemaBytes {
  total: number;
  groups: Record<string, number>;
}

// Leaf relations only (partitioned parents hold nothing); each table with its TOAST and indexes.
const RELATION_BYTES = `
select coalesce(p.relname, c.relname) as table_name, pg_total_relation_size(c.oid)::float8 as bytes,
  pg_relation_size(c.oid)::float8 as heap,
  coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0)::float8 as toast,
  pg_indexes_size(c.oid)::float8 as indexes
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
left join pg_inherits i on i.inhrelid = c.oid
left join pg_class p on p.oid = i.inhparent
where n.nspname = 'public' and c.relkind in ('r', 'm')`;

/** Groups: sign_ins heap / TOAST / indexes, each child table, rollups, the rest; minus an empty migrated database. */
export async function schemaBytes(url: string, baseline?: SchemaBytes): Promise<SchemaBytes> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ table_name: string; bytes: number; heap: number; toast: number; indexes: number }>(
      RELATION_BYTES,
    );
    const groups: Record<string, number> = {};
    const add = (k: string, v: number) => (groups[k] = (groups[k] ?? 0) + v);
    for (const r of rows) {
      if (r.table_name === "sign_ins" || r.table_name === "bare_sign_ins") {
        add(`${r.table_name} heap`, r.heap + (r.bytes - r.heap - r.toast - r.indexes)); // + FSM/VM
        add(`${r.table_name} toast`, r.toast);
        add(`${r.table_name} indexes`, r.indexes);
      } else if (/^sign_in_(ca_policies|risk_events|authentication_details)$/.test(r.table_name)) {
        add(r.table_name, r.bytes);
      } else if (/rollup|travel_candidates|user_countries/.test(r.table_name)) {
        add("rollups and detection tables", r.bytes);
      } else {
        add("other tables", r.bytes);
      }
    }
    if (baseline) {
      for (const [k, v] of Object.entries(baseline.groups)) {
        add(k, -v);
      }
    }
    const total = Object.values(groups).reduce((a, b) => a + b, 0);
    return { total, groups };
  });
}

export async function serverFacts(url: string): Promise<{ version: string; lz4: boolean; toastCompression: string }> {
  return withClient(url, async (c) => {
    const v = await c.query<{ server_version: string }>("show server_version");
    const t = await c.query<{ default_toast_compression: string }>("show default_toast_compression");
    // The setting accepts lz4 only on a server built with it.
    const lz4 = await c
      .query("set local default_toast_compression = 'lz4'")
      .then(() => true)
      .catch(() => false);
    return {
      version: v.rows[0]?.server_version ?? "?",
      lz4,
      toastCompression: t.rows[0]?.default_toast_compression ?? "?",
    };
  });
}
