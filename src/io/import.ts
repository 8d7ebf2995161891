// `import`: loads archived event files (pages saved by the 2016 PowerShell sample from Azure AD Graph, or by any
// Microsoft Graph client, bare arrays, JSON lines, `export` output) into the same tables the daemon fills, through
// the same statements, insert-only unless asked (`update`): idempotent, never replacing a stored row by default, a
// bounded batch per transaction, streamed so files of any size fit in memory.

import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { TextDecoder } from "node:util";

import type { RejectedEvent } from "../events/classify.ts";
import { classifyEvents } from "../events/classify.ts";
import { jsonbArray, jsonbProblem } from "../events/jsonb.ts";
import { isStreamName } from "../events/streams.ts";
import type { Logger } from "../log.ts";
import { type Pool, withTransaction } from "../store/db.ts";
import { freeSentBuffer } from "../store/page-query.ts";
import { ensureMonths, monthsOf } from "../store/partitions.ts";
import {
  insertNewDirectoryAudits,
  insertNewSignIns,
  insertRejected,
  storeOrIsolate,
  type Upsert,
  upsertDirectoryAudits,
  upsertIsolating,
  type UpsertResult,
  upsertSignIns,
} from "../store/signins.ts";
import { unwrapRecord } from "./azure-monitor.ts";
import { JsonEventScanner, JsonStructureError, type ScannedItem } from "./scan.ts";
import { type EventShape, fromAzureAdGraph, SHAPE_LABELS, shapeOf, SOURCE_KEY } from "./shapes.ts";

const DEFAULT_IMPORT_BATCH = 1000;
/**
 * A batch also ends once its events' JSON reaches this many characters (~500 real-sized sign-ins): memory per
 * transaction stays bounded whatever the events' size (the batch's text, its copy for PostgreSQL, the parameter).
 */
const IMPORT_BATCH_CHARS = 4 * 1024 * 1024;
/** The `stream` recorded for events an import set aside in rejected_events. */
const IMPORT_REJECTED_STREAM = "import";

export interface ImportDeps {
  pool: Pool;
  log: Logger;
  tenantId: string;
  now: () => Date;
  /** Events per transaction (default 1000). */
  batchSize?: number;
  signal?: AbortSignal;
  /**
   * Let the file's copy replace a stored row whose content differs (revision + 1). Default false: insert-only, rows
   * already stored (by the daemon or an earlier import) are left exactly as they are.
   */
  update?: boolean;
  /** Called when a file starts, after each stored batch and at the end (the `import` command's progress line). */
  onProgress?: (progress: ImportProgress) => void;
}

/** How far an import is: files, and the counts of every file so far (the current one's up to its last batch). */
export interface ImportProgress extends ImportCounts {
  /** Files (and blobs) finished, of `files` (directories expanded; undefined while blobs are still being listed). */
  filesDone: number;
  files: number | undefined;
  /** The file being read; the last one when finished. */
  file: string;
  finished: boolean;
}

interface ImportCounts {
  read: number;
  inserted: number;
  updated: number;
  unchanged: number;
  rejected: number;
  /** Same id twice within one batch: the later copy is stored, the earlier counted here. */
  duplicates: number;
  /** Azure Monitor records of a category that holds no sign-ins or directory audits (not stored, not rejected). */
  skipped: number;
}

export interface FileSummary extends ImportCounts {
  file: string;
  /** What the file holds, e.g. "Azure AD Graph signinEvents (legacy 2016 sample)", "mixed: …", or "empty". */
  shape: string;
  /** Events per recognised shape. */
  shapes: Partial<Record<EventShape, number>>;
  /** Skipped Azure Monitor records per category. */
  skippedCategories: Record<string, number>;
  /** How the events were packaged, e.g. "2 pages", "JSON array", "JSON lines (120 lines)". */
  container: string;
  /** Set when the file could not be (completely) imported; counts then cover what was stored before. */
  error?: string;
  /** What its reader noticed (a blob still being appended to: import it again later for the rest). */
  notes?: string[];
}

export interface ImportSummary {
  files: FileSummary[];
  totals: ImportCounts;
  /** Files with an error. */
  failed: number;
}

/** A file problem (not JSON, not an event export, unreadable): reported for that file, the others go on. */
export class ImportFileError extends Error {
  override name = "ImportFileError";
}

function emptyCounts(): ImportCounts {
  return { read: 0, inserted: 0, updated: 0, unchanged: 0, rejected: 0, duplicates: 0, skipped: 0 };
}

/** The stream a Graph signIn belongs to: its first signInEventTypes entry, else interactive (v1.0 shape). */
function signInStream(raw: Record<string, unknown>): string {
  const types = raw.signInEventTypes;
  const first = Array.isArray(types) ? types[0] : undefined;
  if (typeof first === "string" && isStreamName(first) && first !== "directoryAudits") {
    return first;
  }
  return raw.isInteractive === false ? "nonInteractiveUser" : "interactiveUser";
}

interface Routed {
  table: "sign_ins" | "directory_audits";
  stream: string;
  /** What the checks read (keyOf): the event's id and time, not the parsed event (it dies young). */
  value: unknown;
  /** The JSON text stored: the event's text as in the file (a mapped legacy event: its serialised mapping). */
  text: string;
}

type Pending = Routed | { rejected: RejectedEvent };

/**
 * What classifyEvents reads of an event (its id and time fields): held for the batch instead of the parsed event,
 * whose thousands of objects per batch would otherwise live until the batch is stored (and be promoted to the old
 * generation); the text is what is stored.
 */
function keyOf(value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return value;
  }
  const { id, createdDateTime, activityDateTime } = value as Record<string, unknown>;
  return { id, createdDateTime, activityDateTime };
}

/** Adds `from`'s counts to `into`'s (a FileSummary's other fields untouched). */
function addCounts<T extends ImportCounts>(into: T, from: ImportCounts): T {
  for (const key of Object.keys(emptyCounts()) as Array<keyof ImportCounts>) {
    into[key] += from[key];
  }
  return into;
}

/**
 * What `import` reads: a file, or a blob of a storage account (src/io/blob.ts). `open` streams its bytes once;
 * `notes` says afterwards what the reader noticed (a blob still being appended to).
 */
export interface ImportSource {
  /** Shown in the summary and the logs (never a secret); its last path segment names it in rejected events. */
  name: string;
  open(): AsyncIterable<Uint8Array>;
  notes?(): string[];
}

export function newImportSummary(): ImportSummary {
  return { files: [], totals: emptyCounts(), failed: 0 };
}

/** The files to read, directories expanded (a directory without a file to read is reported in `summary`). */
export async function fileSources(files: readonly string[], summary: ImportSummary): Promise<ImportSource[]> {
  const found = await expandDirectories(files, summary);
  return found.map((file) => ({ name: file, open: () => createReadStream(file, { highWaterMark: 1 << 20 }) }));
}

/** Imports each file in turn; a file's problem is reported in its summary and the next file is still read. */
export async function importFiles(
  files: readonly string[],
  deps: ImportDeps,
  summary: ImportSummary = newImportSummary(),
): Promise<ImportSummary> {
  return importSources(await fileSources(files, summary), deps, summary);
}

/**
 * Imports each source in turn into `summary` (also when a source's reader throws, e.g. a storage account gone away:
 * the summary then holds what was stored before).
 */
export async function importSources(
  sources: AsyncIterable<ImportSource> | Iterable<ImportSource>,
  deps: ImportDeps,
  summary: ImportSummary = newImportSummary(),
): Promise<ImportSummary> {
  const months = new Set<number>();
  // Entries already in the summary (directories without a file to read) are not counted as files.
  const before = summary.files.length;
  const total = Array.isArray(sources) ? sources.length : undefined;
  let last = "";
  const report = (file: string, current: ImportCounts | undefined, finished: boolean) => {
    const counts = addCounts({ ...summary.totals }, current ?? emptyCounts());
    deps.onProgress?.({ ...counts, filesDone: summary.files.length - before, files: total, file, finished });
  };
  for await (const source of sources) {
    deps.signal?.throwIfAborted();
    const file = source.name;
    last = file;
    report(file, undefined, false);
    const result = await importFile(source, deps, months, (current) => report(file, current, false));
    summary.files.push(result);
    addCounts(summary.totals, result);
    if (result.error !== undefined) {
      summary.failed++;
      deps.log.error({ file, ...countsOf(result), error: result.error }, "file not (completely) imported");
    } else {
      deps.log.info({ file, shape: result.shape, ...countsOf(result) }, "file imported");
    }
    if (result.skipped > 0) {
      deps.log.warn(
        { file, skipped: result.skippedCategories },
        "Azure Monitor records of categories without sign-ins or directory audits skipped",
      );
    }
    for (const note of result.notes ?? []) {
      deps.log.warn({ file, note }, "file imported as far as it was written");
    }
  }
  report(last, undefined, true);
  return summary;
}

/** The extensions of the files an `import DIR` reads (PT1H.json blobs, export output, saved pages). */
export const DIRECTORY_FILE_EXTENSIONS = [".json", ".jsonl"];

/**
 * Each directory among the paths replaced by the files under it, recursively (a storage account's
 * insights-logs-signinlogs/resourceId=…/y=2026/m=01/d=01/h=00/m=00/PT1H.json tree), sorted by path, so that a
 * tree imports in time order; a directory holding none is reported as a failed item. Other paths are kept as given
 * (a missing file is reported when it is read).
 */
async function expandDirectories(paths: readonly string[], summary: ImportSummary): Promise<string[]> {
  const files: string[] = [];
  for (const given of paths) {
    const info = await stat(given).catch(() => undefined);
    if (!info?.isDirectory()) {
      files.push(given);
      continue;
    }
    let found: string[];
    try {
      const entries = await readdir(given, { recursive: true, withFileTypes: true });
      found = entries
        .filter((e) => e.isFile() && DIRECTORY_FILE_EXTENSIONS.includes(path.extname(e.name).toLowerCase()))
        .map((e) => path.join(e.parentPath, e.name))
        .sort();
    } catch (error) {
      failDirectory(summary, given, `cannot read the directory (${(error as Error).message})`);
      continue;
    }
    if (found.length === 0) {
      failDirectory(summary, given, `a directory with no ${DIRECTORY_FILE_EXTENSIONS.join(" or ")} file under it`);
    }
    files.push(...found);
  }
  return files;
}

function failDirectory(summary: ImportSummary, dir: string, error: string): void {
  summary.files.push({
    file: dir,
    shape: "empty",
    shapes: {},
    skippedCategories: {},
    container: "directory",
    ...emptyCounts(),
    error,
  });
  summary.failed++;
}

function countsOf(c: ImportCounts): ImportCounts {
  const { read, inserted, updated, unchanged, rejected, duplicates, skipped } = c;
  return { read, inserted, updated, unchanged, rejected, duplicates, skipped };
}

async function importFile(
  source: ImportSource,
  deps: ImportDeps,
  months: Set<number>,
  onStored: (current: ImportCounts) => void,
): Promise<FileSummary> {
  const summary: FileSummary = {
    file: source.name,
    shape: "empty",
    shapes: {},
    skippedCategories: {},
    container: "",
    ...emptyCounts(),
  };
  const batchSize = deps.batchSize ?? DEFAULT_IMPORT_BATCH;
  const name = path.basename(source.name);
  let pending: Pending[] = [];
  // Characters of the texts in `pending`.
  let pendingChars = 0;
  const charsOf = (p: Pending) => ("rejected" in p ? p.rejected.rawText.length : p.text.length);
  const add = (p: Pending): void => {
    pending.push(p);
    pendingChars += charsOf(p);
  };
  let recognised = false;
  const items: ScannedItem[] = [];
  const scanner = new JsonEventScanner((item) => items.push(item));

  const take = (item: ScannedItem): void => {
    summary.read++;
    let value: unknown;
    try {
      value = JSON.parse(item.text);
    } catch (error) {
      add({
        rejected: { reason: `invalid JSON (${(error as Error).message})`, rawText: item.text },
      });
      return;
    }
    // What PostgreSQL would refuse (U+0000, an unpaired surrogate escape, a number outside numeric, deep nesting).
    const problem = jsonbProblem(item.text);
    if (problem !== undefined) {
      add({ rejected: { reason: problem, rawText: item.text } });
      return;
    }
    const shape = shapeOf(value);
    summary.shapes[shape] = (summary.shapes[shape] ?? 0) + 1;
    if (shape === "unknown") {
      add({
        rejected: {
          reason:
            value === null || typeof value !== "object" || Array.isArray(value)
              ? "not a JSON object"
              : "neither a Graph signIn (createdDateTime), an Azure AD Graph signinEvent (signinDateTime) nor a directoryAudit (activityDateTime)",
          rawText: item.text,
        },
      });
      return;
    }
    recognised = true;
    if (shape === "azureMonitor") {
      const unwrapped = unwrapRecord(value as Record<string, unknown>, item.text, SOURCE_KEY);
      if ("skipped" in unwrapped) {
        summary.skipped++;
        summary.skippedCategories[unwrapped.skipped] = (summary.skippedCategories[unwrapped.skipped] ?? 0) + 1;
      } else {
        add({ ...unwrapped, value: keyOf(unwrapped.value) });
      }
      return;
    }
    if (shape === "graphDirectoryAudit") {
      add({ table: "directory_audits", stream: "directoryAudits", value: keyOf(value), text: item.text });
      return;
    }
    const event = shape === "azureAdGraph" ? fromAzureAdGraph(value as Record<string, unknown>) : value;
    const text = event === value ? item.text : JSON.stringify(event);
    add({
      table: "sign_ins",
      stream: signInStream(event as Record<string, unknown>),
      value: keyOf(event),
      text,
    });
  };

  const flush = async (all: boolean): Promise<void> => {
    while (pending.length >= batchSize || pendingChars >= IMPORT_BATCH_CHARS || (all && pending.length > 0)) {
      if (!recognised) {
        throw new ImportFileError(
          `not an event export: none of the first ${pending.length} items is a Graph signIn (createdDateTime), an Azure AD Graph signinEvent (signinDateTime) or a directoryAudit (activityDateTime); nothing stored`,
        );
      }
      let size = 0;
      let chars = 0;
      while (size < pending.length && size < batchSize && (size === 0 || chars < IMPORT_BATCH_CHARS)) {
        chars += charsOf(pending[size] as Pending);
        size++;
      }
      const batch = pending.slice(0, size);
      pending = pending.slice(size);
      pendingChars -= chars;
      deps.signal?.throwIfAborted();
      await storeBatch(batch, deps, name, months, summary);
      onStored(summary);
    }
  };

  try {
    let decoder: TextDecoder | undefined;
    for await (const chunk of source.open()) {
      decoder ??= new TextDecoder(detectEncoding(chunk), { fatal: true });
      scanner.push(decodeChunk(decoder, chunk, true));
      for (const item of items.splice(0)) {
        take(item);
      }
      if (recognised || pending.length >= batchSize) {
        await flush(false);
      }
    }
    if (decoder) {
      scanner.push(decodeChunk(decoder, undefined, false));
    }
    scanner.end();
    for (const item of items.splice(0)) {
      take(item);
    }
    await flush(true);
  } catch (error) {
    months.clear();
    summary.error = describeFileError(error, summary);
    if (summary.error === undefined) {
      throw error;
    }
  }
  summary.container = describeContainer(scanner.seen);
  summary.shape = describeShape(summary.shapes);
  const notes = source.notes?.() ?? [];
  if (notes.length > 0) {
    summary.notes = notes;
  }
  return summary;
}

function decodeChunk(decoder: TextDecoder, chunk: Uint8Array | undefined, more: boolean): string {
  try {
    return decoder.decode(chunk, { stream: more });
  } catch (error) {
    throw new ImportFileError(`not UTF-8 or UTF-16 text (${(error as Error).message})`);
  }
}

/** UTF-8 unless a BOM or NUL bytes say UTF-16 (Windows PowerShell's Out-File writes UTF-16LE with a BOM). */
function detectEncoding(head: Uint8Array): string {
  const [a, b] = [head[0], head[1]];
  if (a === 0xff && b === 0xfe) {
    return "utf-16le";
  }
  if (a === 0xfe && b === 0xff) {
    return "utf-16be";
  }
  if (a !== undefined && b !== undefined && a !== 0 && b === 0) {
    return "utf-16le";
  }
  if (a === 0 && b !== undefined && b !== 0) {
    return "utf-16be";
  }
  return "utf-8";
}

function describeFileError(error: unknown, summary: FileSummary): string | undefined {
  const stored =
    summary.inserted + summary.updated + summary.unchanged + summary.rejected > 0
      ? ` (the ${summary.inserted + summary.updated + summary.unchanged + summary.rejected} events before it were stored)`
      : "";
  if (error instanceof ImportFileError) {
    return error.message;
  }
  if (error instanceof JsonStructureError) {
    return `not valid JSON: ${error.message}${stored}`;
  }
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code === "string" && /^E[A-Z]+$/.test(code) && (error as NodeJS.ErrnoException).syscall) {
    return `cannot read the file (${(error as Error).message})`;
  }
  return undefined;
}

function describeContainer(seen: JsonEventScanner["seen"]): string {
  const parts: string[] = [];
  if (seen.pages > 0) {
    parts.push(seen.pages === 1 ? "1 page" : `${seen.pages} pages (JSON lines)`);
  }
  if (seen.records > 0) {
    parts.push(seen.records === 1 ? `1 {"records": […]} object` : `${seen.records} {"records": […]} objects`);
  }
  if (seen.arrays > 0) {
    parts.push(seen.arrays === 1 ? "JSON array" : `${seen.arrays} JSON arrays`);
  }
  if (seen.lines > 0) {
    parts.push(`JSON lines (${seen.lines} events)`);
  }
  return parts.join(" + ") || "no JSON value";
}

function describeShape(shapes: Partial<Record<EventShape, number>>): string {
  const known = (Object.keys(shapes) as EventShape[]).filter((s) => s !== "unknown");
  if (known.length === 0) {
    return shapes.unknown ? SHAPE_LABELS.unknown : "empty";
  }
  if (known.length === 1) {
    return SHAPE_LABELS[known[0] as EventShape];
  }
  return `mixed: ${known.map((s) => `${shapes[s]} ${SHAPE_LABELS[s]}`).join(", ")}`;
}

async function storeBatch(
  batch: readonly Pending[],
  deps: ImportDeps,
  fileName: string,
  months: Set<number>,
  counts: ImportCounts,
): Promise<void> {
  interface Group {
    table: Routed["table"];
    stream: string;
    values: unknown[];
    texts: string[];
  }
  const groups = new Map<string, Group>();
  const rejected: RejectedEvent[] = [];
  for (const p of batch) {
    if ("rejected" in p) {
      rejected.push(p.rejected);
      continue;
    }
    const key = `${p.table}\u0000${p.stream}`;
    let group = groups.get(key);
    if (!group) {
      group = { table: p.table, stream: p.stream, values: [], texts: [] };
      groups.set(key, group);
    }
    group.values.push(p.value);
    group.texts.push(p.text);
  }
  // Each group's storable events as their texts (the later copy of a repeated id wins), checked once.
  const sorted = [...groups.values()].map((group) => {
    const classified = classifyEvents(
      group.values,
      group.table === "sign_ins" ? "createdDateTime" : "activityDateTime",
      () => undefined,
      (i) => group.texts[i] as string,
    );
    return { group, ...classified, texts: classified.valid.map((e) => group.texts[e.index] as string) };
  });
  for (const s of sorted) {
    rejected.push(...s.rejected);
  }
  const seenAt = deps.now();
  // Partitions in a transaction of their own, before the one that writes (migrations/0017).
  const needed = monthsOf(
    sorted.flatMap((s) => (s.group.table === "sign_ins" ? s.valid.map((e) => e.createdDateTime) : [])),
  ).filter((m) => !months.has(m.getTime()));
  await ensureMonths(deps.pool, needed);
  for (const m of needed) {
    months.add(m.getTime());
  }
  // One statement per group; if PostgreSQL refuses a group's data all the same, the batch is stored again in a new
  // transaction with the refused events isolated (upsertIsolating) and set aside with PostgreSQL's reason.
  const store = (isolate: boolean, failed: () => void) =>
    withTransaction(deps.pool, async (client) => {
      const batchCounts = emptyCounts();
      const refused: RejectedEvent[] = [];
      for (const s of sorted) {
        batchCounts.duplicates += s.duplicates;
        const upsert: Upsert =
          s.group.table === "sign_ins"
            ? deps.update === true
              ? upsertSignIns
              : insertNewSignIns
            : deps.update === true
              ? upsertDirectoryAudits
              : insertNewDirectoryAudits;
        let result: UpsertResult;
        if (isolate) {
          const isolated = await upsertIsolating(upsert, client, deps.tenantId, s.group.stream, s.texts, seenAt);
          refused.push(...isolated.rejected);
          result = isolated;
        } else {
          const text = jsonbArray(s.texts);
          try {
            result = await upsert(
              client,
              deps.tenantId,
              s.group.stream,
              { text, skip: [], count: s.texts.length },
              seenAt,
            );
          } catch (error) {
            failed();
            throw error;
          } finally {
            // Stored or refused, the batch's bytes are not read again (an isolating retry stores s.texts).
            freeSentBuffer(text);
          }
        }
        batchCounts.inserted += result.inserted;
        batchCounts.updated += result.updated;
        batchCounts.unchanged += result.unchanged;
      }
      const all = [...rejected, ...refused];
      await insertRejected(
        client,
        deps.tenantId,
        IMPORT_REJECTED_STREAM,
        all.map((r) => ({ reason: `${r.reason} (import of ${fileName})`, rawText: r.rawText })),
        seenAt,
      );
      batchCounts.rejected = all.length;
      return batchCounts;
    });
  const batchCounts = await storeOrIsolate(store, (error) =>
    deps.log.warn(
      { file: fileName, error: error.message, code: error.code },
      "PostgreSQL refused a batch's data; storing it again with the refused events isolated",
    ),
  );
  addCounts(counts, batchCounts);
}
