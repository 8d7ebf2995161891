// Command handlers for `import` and `export`: flags, tenant choice, human-readable output, exit codes.
// No `process` access: the CLI passes the pool, the logger, the configured tenants and the output stream.

import type { Writable } from "node:stream";
import type { ParseArgsOptionsConfig } from "node:util";

import { type ParsedArgs, parseCommandArgs, parseTime, parseWholeNumber } from "../commands/args.ts";
import { EXIT, type ExitCode } from "../errors.ts";
import { isStreamName, STREAM_NAMES } from "../events/streams.ts";
import type { Logger } from "../log.ts";
import type { Pool } from "../store/db.ts";
import { EXPORT_FORMATS, type ExportFormat, exportEvents, MAX_PAGE_SIZE } from "./export.ts";
import {
  type BlobSettings,
  blobSources,
  BlobSourceError,
  type BlobTarget,
  type HourRange,
  isBlobUrl,
  parseBlobArgument,
} from "./blob.ts";
import {
  type FileSummary,
  fileSources,
  type ImportProgress,
  type ImportSource,
  importSources,
  newImportSummary,
} from "./import.ts";

export interface CommandContext {
  pool: Pool;
  log: Logger;
  /** Configured tenant ids. */
  tenants: string[];
  /** Where the command's result goes (stdout). */
  out: Writable;
  /** Where usage errors go (stderr); default `out`. */
  err?: Writable;
  now?: () => Date;
  signal?: AbortSignal;
  /** `import`: told when a file starts and after each stored batch (the progress line on a terminal). */
  onProgress?: (progress: ImportProgress) => void;
  /** How `import` reaches storage accounts (AZURE_STORAGE_* from src/config.ts). */
  blob?: BlobSettings;
}

export const IMPORT_HELP = `Usage: node src/cli.ts import [--tenant ID] [--batch-size N] [--update] <file|directory|blob URL>…
                              [--from-blob CONTAINER[/PREFIX]]… [--since TIME] [--until TIME]

Loads archived sign-in files into PostgreSQL, idempotently (importing a file again changes nothing), so years of
dumps join the live data. Insert-only by default: an event already stored (by the daemon or an earlier import) is
left exactly as it is, so an older or poorer copy (e.g. v1.0 after beta) never replaces it; --update lets the
file's copy replace a stored event whose content differs. Each event is stored from its text in the file (numbers
exact). Each file may hold:
  - pages saved by the old PowerShell sample (SigninActivities0.json …) from the retired Azure AD Graph
    …/activities/signinEvents API (signinDateTime, loginStatus, deviceInformation …), UTF-8 or UTF-16;
    mapped to Graph's signIn shape, every original field kept, marked "@signinIngest.source": "azureAdGraph";
  - Microsoft Graph signIn (or directoryAudit) events: a page {"value": […]}, a bare array, JSON lines, or the
    output of 'export' in either format;
  - Azure Monitor diagnostic-settings records (what Entra ID diagnostic settings write to a storage account or an
    Event Hub: time, category, operationName, properties = the event), as JSON lines or {"records": […]}:
    SignInLogs, NonInteractiveUserSignInLogs, ServicePrincipalSignInLogs, ManagedIdentitySignInLogs go to their
    stream, AuditLogs to directory audits; other categories are counted as skipped.
A directory is read recursively (every .json and .jsonl file under it, in path order), e.g. the folder trees Entra
diagnostic settings write to a storage account, downloaded with azcopy:
  insights-logs-<category>/resourceId=/tenants/<tenant>/providers/Microsoft.aadiam/y=2026/m=01/d=01/h=00/m=00/PT1H.json
with <category> signinlogs, noninteractiveusersigninlogs, serviceprincipalsigninlogs, managedidentitysigninlogs or
auditlogs (one container each; give their parent directory to import them all).
The storage account can also be read directly, blob by blob (streamed, in name order: oldest hour first), with the
same result as importing the downloaded tree:
  https://<account>.blob.core.windows.net/<container>[/<prefix>][?<SAS>]   (an argument)
      credential: the SAS in the URL, else AZURE_STORAGE_ACCOUNT_KEY, else Microsoft Entra ID
      (DefaultAzureCredential: managed identity, AZURE_CLIENT_ID/AZURE_CLIENT_SECRET, az login; role Storage Blob
      Data Reader)
  --from-blob CONTAINER[/PREFIX]   the account of AZURE_STORAGE_CONNECTION_STRING (key or SAS)
A container ending in * reads every container whose name starts with the rest (insights-logs-*: every
diagnostic-settings category). A PT1H.json still being written (its hour not over) is read as far as it is
written, re-read if it grew meanwhile, and reported "incomplete": import it again later, only the events added
since are stored.
The shape is detected per file and reported. Events PostgreSQL cannot store (no id or valid time, U+0000, an
unpaired surrogate escape, a number outside numeric, nesting over 200 levels) go to rejected_events with the reason;
the rest is imported and the summary counts them. A file that is not an event export is reported and skipped; the
other files are still imported.

  --tenant ID       the tenant the events belong to (default: the only configured tenant; required with several)
  --batch-size N    events per transaction (default 1000)
  --update          replace stored events whose content differs from the file's copy (revision + 1); without it
                    they are counted unchanged
  --since, --until  blob sources: only the hours (y=/m=/d=/h= in the blob's path) overlapping [--since, --until);
                    an ISO-8601 time or an age (7d, 12h)

Exit codes: 0 every file imported (rejected events included), 64 usage, 65 a file could not be (completely) imported,
66 no such container (or no blob under the prefix), 75 the storage account is unreachable (run again: what was
imported is kept), 78 the storage account refused the credential.`;

export const EXPORT_HELP = `Usage: node src/cli.ts export --from <time> [--to <time>] [--tenant ID] [--stream NAME]
                              [--format jsonl|graph-pages] [--page-size N]

Writes stored events to stdout, oldest first, with their time in [--from, --to): exactly what Graph sent (raw).
  --from, --to      ISO-8601 time (2025-03-01T00:00:00Z) or an age (7d, 12h); --to defaults to now
  --tenant ID       default: the only configured tenant; required with several
  --stream NAME     ${STREAM_NAMES.join(", ")}
                    (default: every sign-in stream; directoryAudits exports directory audits instead)
  --format jsonl        one event per line (default)
           graph-pages  one Graph page per line: {"@odata.context": …, "value": [up to --page-size events]}
  --page-size N     events per page, 1..${MAX_PAGE_SIZE} (default ${MAX_PAGE_SIZE})
Both formats can be given back to 'import' (e.g. into another database).

Exit codes: 0 ok (a range with no events prints a warning on stderr), 64 usage, 66 the tenant has no stored events
at all (a mistyped --tenant).`;

export const IMPORT_OPTIONS = {
  tenant: { type: "string" },
  "batch-size": { type: "string" },
  update: { type: "boolean" },
  "from-blob": { type: "string", multiple: true },
  since: { type: "string" },
  until: { type: "string" },
} satisfies ParseArgsOptionsConfig;

export const EXPORT_OPTIONS = {
  from: { type: "string" },
  to: { type: "string" },
  tenant: { type: "string" },
  stream: { type: "string" },
  format: { type: "string" },
  "page-size": { type: "string" },
} satisfies ParseArgsOptionsConfig;

/** Any stored event of the tenant (sign-ins or audits): tells an empty range from a tenant never stored. */
const TENANT_HAS_EVENTS = `
select exists (select 1 from sign_ins where tenant_id = $1) or exists (select 1 from directory_audits where tenant_id = $1) as any`;

function usage(ctx: CommandContext, message: string, help: string): ExitCode {
  (ctx.err ?? ctx.out).write(`${message}\n\n${help}\n`);
  return EXIT.usage;
}

/** Parses argv (strict) and answers --help; the parsed values otherwise. */
function parsed(
  argv: string[],
  ctx: CommandContext,
  command: string,
  options: ParseArgsOptionsConfig,
  help: string,
  allowPositionals: boolean,
): ParsedArgs | ExitCode {
  const result = parseCommandArgs(command, argv, options, allowPositionals);
  if ("usageError" in result) {
    return usage(ctx, result.usageError, help);
  }
  if (result.values.help === true) {
    ctx.out.write(`${help}\n`);
    return EXIT.ok;
  }
  return result;
}

/** The tenant a command works on: --tenant, or the only configured one. */
function chooseTenant(
  given: string | undefined,
  tenants: readonly string[],
  mustBeConfigured: boolean,
): string | { problem: string } {
  if (given !== undefined) {
    if (given.trim() === "") {
      return { problem: "--tenant needs a tenant id" };
    }
    // Without configured tenants (no Graph credentials: import/export need only the database) --tenant is the tenant.
    if (mustBeConfigured && tenants.length > 0 && !tenants.includes(given)) {
      return { problem: `--tenant ${given} is not a configured tenant (configured: ${tenants.join(", ") || "none"})` };
    }
    return given;
  }
  if (tenants.length === 1) {
    return tenants[0] as string;
  }
  return {
    problem:
      tenants.length === 0
        ? "no tenant is configured: pass --tenant"
        : `${tenants.length} tenants are configured: pass --tenant (one of ${tenants.join(", ")})`,
  };
}

function formatCounts(s: FileSummary): string {
  const dup = s.duplicates > 0 ? `, duplicates ${s.duplicates}` : "";
  const skipped =
    s.skipped > 0
      ? `, skipped ${s.skipped} (${Object.entries(s.skippedCategories)
          .map(([category, n]) => `${category}: ${n}`)
          .join(", ")})`
      : "";
  return `read ${s.read}, inserted ${s.inserted}, updated ${s.updated}, unchanged ${s.unchanged}, rejected ${s.rejected}${dup}${skipped}`;
}

export async function importCommand(argv: string[], ctx: CommandContext): Promise<ExitCode> {
  const args = parsed(argv, ctx, "import", IMPORT_OPTIONS, IMPORT_HELP, true);
  return typeof args === "number" ? args : runImport(args, ctx);
}

/** `import` with its arguments parsed (the CLI's command table parses them). */
export async function runImport(args: ParsedArgs, ctx: CommandContext): Promise<ExitCode> {
  const values = args.values as {
    tenant?: string;
    "batch-size"?: string;
    update?: boolean;
    "from-blob"?: string[];
    since?: string;
    until?: string;
  };
  const paths = args.positionals.filter((p) => !isBlobUrl(p));
  const blobs = blobTargets([...args.positionals.filter(isBlobUrl), ...(values["from-blob"] ?? [])]);
  if (!Array.isArray(blobs)) {
    return usage(ctx, `import: ${blobs.problem}`, IMPORT_HELP);
  }
  if (paths.length === 0 && blobs.length === 0) {
    return usage(ctx, "import: name at least one file, directory or blob source", IMPORT_HELP);
  }
  const tenant = chooseTenant(values.tenant, ctx.tenants, true);
  if (typeof tenant !== "string") {
    return usage(ctx, `import: ${tenant.problem}`, IMPORT_HELP);
  }
  const batchSize = values["batch-size"] === undefined ? undefined : parseWholeNumber(values["batch-size"], 1, 10_000);
  if (values["batch-size"] !== undefined && batchSize === undefined) {
    return usage(ctx, "import: --batch-size must be an integer in 1..10000", IMPORT_HELP);
  }
  const now = ctx.now ?? (() => new Date());
  const range = hourRange(values.since, values.until, now(), blobs.length > 0);
  if ("problem" in range) {
    return usage(ctx, `import: ${range.problem}`, IMPORT_HELP);
  }
  const deps = {
    pool: ctx.pool,
    log: ctx.log,
    tenantId: tenant,
    now,
    ...(batchSize !== undefined ? { batchSize } : {}),
    ...(values.update === true ? { update: true } : {}),
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}),
  };
  const summary = newImportSummary();
  let failure: BlobSourceError | undefined;
  try {
    // Files first, then blobs, as one sequence: one progress line (its total known while there are files only).
    const files = await fileSources(paths, summary);
    const settings = ctx.blob ?? { connectionString: undefined, accountKey: undefined };
    await importSources(
      blobs.length > 0 ? chain(files, blobSources(blobs, settings, range, deps)) : files,
      deps,
      summary,
    );
  } catch (error) {
    if (!(error instanceof BlobSourceError)) {
      throw error;
    }
    failure = error;
  }
  for (const f of summary.files) {
    const what = f.container ? `${f.shape}, ${f.container}` : f.shape;
    ctx.out.write(
      f.error === undefined
        ? `${f.file}: ${what}: ${formatCounts(f)}\n`
        : `${f.file}: FAILED: ${f.error}${f.read > 0 ? ` [${what}: ${formatCounts(f)}]` : ""}\n`,
    );
    for (const note of f.notes ?? []) {
      ctx.out.write(`  incomplete: ${note}\n`);
    }
  }
  const t = summary.totals;
  ctx.out.write(
    `tenant ${tenant}: ${summary.files.length} file(s), read ${t.read}, inserted ${t.inserted}, updated ${t.updated}, unchanged ${t.unchanged}, rejected ${t.rejected}` +
      (t.skipped > 0 ? `, skipped ${t.skipped}` : "") +
      (summary.failed > 0 ? `; ${summary.failed} file(s) failed\n` : "\n"),
  );
  if (failure !== undefined) {
    ctx.log.error({ error: failure.message, exitCode: failure.exitCode }, "import stopped");
    (ctx.err ?? ctx.out).write(`import: ${failure.message}\n`);
    return failure.exitCode;
  }
  return summary.failed > 0 ? EXIT.data : EXIT.ok;
}

async function* chain(first: Iterable<ImportSource>, then: AsyncIterable<ImportSource>): AsyncIterable<ImportSource> {
  yield* first;
  yield* then;
}

function blobTargets(texts: readonly string[]): BlobTarget[] | { problem: string } {
  const targets: BlobTarget[] = [];
  for (const text of texts) {
    const target = parseBlobArgument(text);
    if ("problem" in target) {
      return target;
    }
    targets.push(target);
  }
  return targets;
}

function hourRange(
  since: string | undefined,
  until: string | undefined,
  now: Date,
  anyBlob: boolean,
): HourRange | { problem: string } {
  if ((since !== undefined || until !== undefined) && !anyBlob) {
    return { problem: "--since and --until select hours of blob sources; name a blob URL or --from-blob" };
  }
  const range: HourRange = {};
  for (const [flag, text] of [
    ["since", since],
    ["until", until],
  ] as const) {
    if (text === undefined) {
      continue;
    }
    const at = parseTime(text, now);
    if (at === undefined) {
      return { problem: `--${flag} must be an ISO-8601 time or an age like 7d` };
    }
    range[flag] = at;
  }
  if (range.since && range.until && range.since >= range.until) {
    return { problem: "--since must be before --until" };
  }
  return range;
}

export async function exportCommand(argv: string[], ctx: CommandContext): Promise<ExitCode> {
  const args = parsed(argv, ctx, "export", EXPORT_OPTIONS, EXPORT_HELP, false);
  return typeof args === "number" ? args : runExport(args, ctx);
}

/** `export` with its arguments parsed. */
export async function runExport(args: ParsedArgs, ctx: CommandContext): Promise<ExitCode> {
  const values = args.values as Partial<Record<keyof typeof EXPORT_OPTIONS, string>>;
  const now = (ctx.now ?? (() => new Date()))();
  const from = parseTime(values.from, now);
  const to = values.to === undefined ? now : parseTime(values.to, now);
  if (from === undefined || to === undefined) {
    return usage(ctx, "export: --from (and --to, if given) must be an ISO-8601 time or an age like 7d", EXPORT_HELP);
  }
  if (from >= to) {
    return usage(ctx, "export: --from must be before --to", EXPORT_HELP);
  }
  const format = (values.format ?? "jsonl") as ExportFormat;
  if (!EXPORT_FORMATS.includes(format)) {
    return usage(ctx, `export: --format must be ${EXPORT_FORMATS.join(" or ")}`, EXPORT_HELP);
  }
  if (values.stream !== undefined && !isStreamName(values.stream)) {
    return usage(ctx, `export: --stream must be one of ${STREAM_NAMES.join(", ")}`, EXPORT_HELP);
  }
  const pageSize =
    values["page-size"] === undefined ? MAX_PAGE_SIZE : parseWholeNumber(values["page-size"], 1, MAX_PAGE_SIZE);
  if (pageSize === undefined) {
    return usage(ctx, `export: --page-size must be an integer in 1..${MAX_PAGE_SIZE}`, EXPORT_HELP);
  }
  const tenant = chooseTenant(values.tenant, ctx.tenants, false);
  if (typeof tenant !== "string") {
    return usage(ctx, `export: ${tenant.problem}`, EXPORT_HELP);
  }
  let result: Awaited<ReturnType<typeof exportEvents>>;
  try {
    result = await exportEvents({
      pool: ctx.pool,
      tenantId: tenant,
      from,
      to,
      format,
      out: ctx.out,
      pageSize,
      ...(values.stream !== undefined ? { stream: values.stream } : {}),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
  } catch (error) {
    // `export … | head`: the reader closed the pipe on purpose; that is the end of the output, not a failure.
    if ((error as { code?: unknown }).code === "EPIPE") {
      ctx.log.info({ tenant_id: tenant }, "export stopped: the output was closed");
      return EXIT.ok;
    }
    throw error;
  }
  ctx.log.info(
    { tenant_id: tenant, stream: values.stream ?? "all sign-ins", from, to, format, ...result },
    "export complete",
  );
  if (result.events === 0) {
    const err = ctx.err ?? ctx.out;
    const any = (await ctx.pool.query<{ any: boolean }>(TENANT_HAS_EVENTS, [tenant])).rows[0]?.any === true;
    if (!any) {
      err.write(`export: nothing matched: tenant ${tenant} has no stored events (is --tenant right?)\n`);
      return EXIT.noInput;
    }
    err.write(
      `export: nothing matched: no ${values.stream ?? "sign-in"} events of tenant ${tenant} from ${from.toISOString()} to ${to.toISOString()}\n`,
    );
  }
  return EXIT.ok;
}

export { parseTime };
