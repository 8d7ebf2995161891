// `import` straight from Azure Blob Storage: the containers Entra ID's diagnostic settings write
// (insights-logs-signinlogs/resourceId=…/y=2026/m=01/d=01/h=00/m=00/PT1H.json), listed in name order (oldest hour
// first within a resource) and each blob streamed into the same reader as a local file (src/io/import.ts), so the
// rows are the same as an import of the downloaded tree. Nothing holds more than a chunk of a blob.
//
// A PT1H.json is an append blob written during its hour. A blob is read up to the length it was listed with, then
// again from there while it grew meanwhile (append blocks hold whole records, so the pieces join into the same
// text); a blob whose hour is not over yet (or that kept growing) is reported as such: import it again later, the
// events already stored are left as they are and only the new ones are added.

import type { BlobServiceClient, ContainerClient, StoragePipelineOptions } from "@azure/storage-blob";

import { EXIT, type ExitCode } from "../errors.ts";
import { redact, registerSecret } from "../redact.ts";
import { HOUR } from "../time.ts";
import { DIRECTORY_FILE_EXTENSIONS, type ImportDeps, ImportFileError, type ImportSource } from "./import.ts";

/** Where to read: an account (its URL, or the connection string's), a container (or `prefix*`), a blob prefix. */
export interface BlobTarget {
  /**
   * The account's blob endpoint without SAS (`https://acct.blob.core.windows.net`, `http://127.0.0.1:10000/acct`);
   * undefined: the connection string's.
   */
  serviceUrl: string | undefined;
  /** A container name, or a name prefix ending in `*` (every container whose name starts with it). */
  container: string;
  prefix: string;
  /** A SAS token from the URL (without `?`). */
  sas: string | undefined;
  /** As given, with a SAS signature redacted: what messages and logs show. */
  display: string;
}

/** How to reach the storage accounts: the settings from src/config.ts, and the SDK's retry policy. */
export interface BlobSettings {
  connectionString: string | undefined;
  accountKey: string | undefined;
  /** Default: the SDK's (4 tries, exponential from 4 s). */
  retry?: StoragePipelineOptions["retryOptions"];
}

/** Which hours to read, on the blob's y=/m=/d=/h= path: hours overlapping [since, until). */
export interface HourRange {
  since?: Date;
  until?: Date;
}

/** A blob source that cannot be read at all: its exit code (66 missing, 78 access, 75 temporary) and why. */
export class BlobSourceError extends Error {
  override name = "BlobSourceError";
  readonly exitCode: ExitCode;
  constructor(message: string, exitCode: ExitCode, options?: ErrorOptions) {
    super(redact(message), options);
    this.exitCode = exitCode;
  }
}

/**
 * A blob whose hour ended less than this long ago may still be appended to: diagnostic settings deliver records a
 * few minutes late.
 */
const HOUR_SETTLE_MS = 15 * 60_000;
/** How many times (by default) a blob that grew while it was read is read again from where it stopped. */
const MAX_REREADS = 5;

const URL_START = /^https?:\/\//i;

/** True when an `import` argument names a storage account (a URL) instead of a local path. */
export function isBlobUrl(text: string): boolean {
  return URL_START.test(text);
}

// Hosts whose URLs name the account in the first path segment (Azurite, emulators): the SDK's rule.
const PATH_STYLE_HOST = /^(localhost|host\.docker\.internal|\d{1,3}(\.\d{1,3}){3}|\[[0-9a-f:.]+\])$/i;
// Container names: 3–63 lower-case letters, digits and hyphens (or `$logs`); a trailing `*` selects by prefix.
const CONTAINER = /^(\$logs|[a-z0-9][a-z0-9-]{1,61}[a-z0-9]|[a-z0-9][a-z0-9-]{0,61}\*)$/;

/** Parses `https://<account>.blob.core.windows.net/<container>[/<prefix>][?<SAS>]` (or path-style for Azurite). */
export function parseBlobUrl(text: string): BlobTarget | { problem: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { problem: `${redact(text)} is not a URL` };
  }
  const sas = url.search.length > 1 ? url.search.slice(1) : undefined;
  if (sas !== undefined) {
    for (const sig of new URLSearchParams(sas).getAll("sig")) {
      registerSecret(sig);
    }
  }
  const segments = url.pathname.split("/").filter((s) => s !== "");
  const pathStyle = PATH_STYLE_HOST.test(url.hostname);
  const account = pathStyle ? segments.shift() : undefined;
  if (pathStyle && account === undefined) {
    return { problem: `${redact(text)} names no account (http://host:port/<account>/<container>/…)` };
  }
  const display = redact(text);
  let decoded: string[];
  try {
    decoded = segments.map(decodeURIComponent);
  } catch {
    return { problem: `${display} has a malformed %-escape in its path` };
  }
  const [container, ...rest] = decoded;
  if (container === undefined) {
    return { problem: `${display} names no container (…/<container>[/<prefix>], e.g. …/insights-logs-signinlogs)` };
  }
  const target = fromParts(container, rest.join("/"), display);
  if ("problem" in target) {
    return target;
  }
  return { ...target, serviceUrl: `${url.origin}${account === undefined ? "" : `/${account}`}`, sas };
}

/** Parses `--from-blob CONTAINER[/PREFIX]` (the account: AZURE_STORAGE_CONNECTION_STRING), or a URL. */
export function parseBlobArgument(text: string): BlobTarget | { problem: string } {
  if (isBlobUrl(text)) {
    return parseBlobUrl(text);
  }
  const [container = "", ...rest] = text.split("/");
  return fromParts(container, rest.join("/"), text);
}

function fromParts(container: string, prefix: string, display: string): BlobTarget | { problem: string } {
  if (!CONTAINER.test(container)) {
    return {
      problem: `${JSON.stringify(container)} (in ${display}) is not a container name (3-63 lower-case letters, digits, hyphens; or a prefix ending in *)`,
    };
  }
  return { serviceUrl: undefined, container, prefix, sas: undefined, display };
}

const HOUR_PATH = /(?:^|\/)y=(\d{4})\/m=(\d{2})\/d=(\d{2})\/h=(\d{2})(?:\/|$)/;

/** The hour a diagnostic-settings blob holds, from its `y=/m=/d=/h=` path; undefined when the name has none. */
export function hourOfBlob(name: string): Date | undefined {
  const m = HOUR_PATH.exec(name);
  if (m === null) {
    return undefined;
  }
  const [y, mo, d, h] = m.slice(1).map(Number) as [number, number, number, number];
  const at = new Date(Date.UTC(y, mo - 1, d, h));
  return at.getUTCMonth() === mo - 1 && at.getUTCDate() === d && at.getUTCHours() === h ? at : undefined;
}

/** Whether a blob is to be read: an event file (.json, .jsonl) whose hour overlaps the range (any, without one). */
export function wantedBlob(name: string, range: HourRange): boolean {
  const lower = name.toLowerCase();
  if (!DIRECTORY_FILE_EXTENSIONS.some((ext) => lower.endsWith(ext))) {
    return false;
  }
  if (range.since === undefined && range.until === undefined) {
    return true;
  }
  const hour = hourOfBlob(name);
  if (hour === undefined) {
    return false;
  }
  return (
    (range.since === undefined || hour.getTime() + HOUR > range.since.getTime()) &&
    (range.until === undefined || hour.getTime() < range.until.getTime())
  );
}

/** A listed blob: where it is and how long it was when listed. */
export interface ListedBlob {
  container: ContainerClient;
  name: string;
  length: number;
}

/** The account client of a target: the connection string's, else by the SAS in the URL, the key, or Entra ID. */
async function serviceClient(target: BlobTarget, settings: BlobSettings): Promise<BlobServiceClient> {
  const sdk = await import("@azure/storage-blob");
  const options: StoragePipelineOptions = settings.retry ? { retryOptions: settings.retry } : {};
  if (target.serviceUrl === undefined) {
    if (settings.connectionString === undefined) {
      throw new BlobSourceError(
        `--from-blob ${target.display}: AZURE_STORAGE_CONNECTION_STRING is not set (or pass the container's URL: https://<account>.blob.core.windows.net/<container>/…)`,
        EXIT.config,
      );
    }
    registerConnectionStringSecrets(settings.connectionString);
    try {
      return sdk.BlobServiceClient.fromConnectionString(settings.connectionString, options);
    } catch (error) {
      throw new BlobSourceError(
        `AZURE_STORAGE_CONNECTION_STRING is not usable (${(error as Error).message})`,
        EXIT.config,
        { cause: error },
      );
    }
  }
  if (target.sas !== undefined) {
    return new sdk.BlobServiceClient(`${target.serviceUrl}?${target.sas}`, undefined, options);
  }
  if (settings.accountKey !== undefined) {
    registerSecret(settings.accountKey);
    const account = accountOf(target.serviceUrl);
    return new sdk.BlobServiceClient(
      target.serviceUrl,
      new sdk.StorageSharedKeyCredential(account, settings.accountKey),
      options,
    );
  }
  if (new URL(target.serviceUrl).protocol !== "https:") {
    throw new BlobSourceError(
      `${target.display}: Microsoft Entra ID credentials are sent over https only; for an http endpoint (an emulator) set AZURE_STORAGE_ACCOUNT_KEY or put a SAS in the URL`,
      EXIT.config,
    );
  }
  const { DefaultAzureCredential } = await import("@azure/identity");
  return new sdk.BlobServiceClient(target.serviceUrl, new DefaultAzureCredential(), options);
}

/** The account name of a blob endpoint: the host's first label, or the path's first segment (path-style). */
function accountOf(serviceUrl: string): string {
  const url = new URL(serviceUrl);
  const segment = url.pathname.split("/").find((s) => s !== "");
  return segment ?? url.hostname.split(".")[0] ?? "";
}

function registerConnectionStringSecrets(connectionString: string): void {
  for (const part of connectionString.split(";")) {
    const at = part.indexOf("=");
    const key = part.slice(0, at).trim().toLowerCase();
    const value = part.slice(at + 1).trim();
    if (key === "accountkey") {
      registerSecret(value);
    } else if (key === "sharedaccesssignature") {
      for (const sig of new URLSearchParams(value).getAll("sig")) {
        registerSecret(sig);
      }
    }
  }
}

/**
 * The blobs of a target to import, in order: containers by name, then blobs by name (the y=/m=/d=/h= path: oldest
 * hour first), with the length each had when listed. The listing is paged, not held whole.
 */
export async function* listBlobs(
  target: BlobTarget,
  settings: BlobSettings,
  range: HourRange,
  signal?: AbortSignal,
): AsyncGenerator<ListedBlob> {
  const service = await serviceClient(target, settings);
  const where = target.display;
  try {
    const containers: ContainerClient[] = [];
    if (target.container.endsWith("*")) {
      const prefix = target.container.slice(0, -1);
      for await (const c of service.listContainers({ prefix, abortSignal: signal })) {
        containers.push(service.getContainerClient(c.name));
      }
      if (containers.length === 0) {
        throw new BlobSourceError(`${where}: the account has no container named ${prefix}…`, EXIT.noInput);
      }
    } else {
      containers.push(service.getContainerClient(target.container));
    }
    for (const container of containers) {
      for await (const item of container.listBlobsFlat({
        ...(target.prefix !== "" ? { prefix: target.prefix } : {}),
        abortSignal: signal,
      })) {
        if (wantedBlob(item.name, range)) {
          yield { container, name: item.name, length: item.properties.contentLength ?? 0 };
        }
      }
    }
  } catch (error) {
    throw blobError(error, where);
  }
}

/**
 * A listed blob as an import source, named `container/blob`: read up to its listed length, then from there again
 * while it grew (at most `maxRereads` times); `notes` says when its hour is not over or it kept growing.
 */
export function blobSource(
  blob: ListedBlob,
  now: () => Date,
  options: { signal?: AbortSignal | undefined; maxRereads?: number } = {},
): ImportSource {
  const { signal, maxRereads = MAX_REREADS } = options;
  const name = `${blob.container.containerName}/${blob.name}`;
  const notes: string[] = [];
  const client = blob.container.getBlobClient(blob.name);
  const where = `blob ${name}`;
  async function* read(): AsyncGenerator<Uint8Array> {
    let offset = 0;
    let length = blob.length;
    for (let round = 0; ; round++) {
      if (length > offset) {
        const response = await call(() =>
          client.download(offset, length - offset, { abortSignal: signal, maxRetryRequests: 5 }),
        );
        try {
          for await (const chunk of response.readableStreamBody as AsyncIterable<Buffer>) {
            offset += chunk.length;
            yield chunk;
          }
        } catch (error) {
          throw blobError(error, where);
        }
      }
      const current = (await call(() => client.getProperties({ abortSignal: signal }))).contentLength ?? 0;
      if (current <= offset) {
        break;
      }
      if (round === maxRereads) {
        notes.push(
          `it grew while read (${offset} of its ${current} bytes read, after ${maxRereads} re-read(s)): import it again later for the rest`,
        );
        break;
      }
      length = current;
    }
    const hour = hourOfBlob(blob.name);
    if (hour !== undefined && now().getTime() < hour.getTime() + HOUR + HOUR_SETTLE_MS) {
      notes.push(
        `its hour (${hour.toISOString().slice(0, 13)}:00Z) is not over: diagnostic settings may still append to it; import it again after ${new Date(hour.getTime() + HOUR + HOUR_SETTLE_MS).toISOString()} for the rest`,
      );
    }
  }
  async function call<T>(request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      if (statusOf(error) === 404) {
        throw new ImportFileError("the blob was deleted after it was listed");
      }
      if (statusOf(error) === 416) {
        throw new ImportFileError("the blob is shorter than when it was listed (replaced meanwhile): import it again");
      }
      throw blobError(error, where);
    }
  }
  return { name, open: read, notes: () => notes };
}

/** Every wanted blob of the targets, in order, as import sources (listing as it goes). */
export async function* blobSources(
  targets: readonly BlobTarget[],
  settings: BlobSettings,
  range: HourRange,
  deps: Pick<ImportDeps, "now" | "signal">,
): AsyncGenerator<ImportSource> {
  for (const target of targets) {
    let found = 0;
    for await (const blob of listBlobs(target, settings, range, deps.signal)) {
      found++;
      yield blobSource(blob, deps.now, { signal: deps.signal });
    }
    if (found === 0) {
      throw new BlobSourceError(
        `${target.display}: no ${DIRECTORY_FILE_EXTENSIONS.join(" or ")} blob${range.since || range.until ? " of the hours asked (--since/--until)" : ""} under it`,
        EXIT.noInput,
      );
    }
  }
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof status === "number" ? status : undefined;
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "REQUEST_SEND_ERROR",
]);
const IDENTITY_ERRORS = new Set(["CredentialUnavailableError", "AuthenticationError", "AggregateAuthenticationError"]);

/** What a storage or identity failure means for the operator: missing (66), access (78), temporary (75). */
function blobError(error: unknown, where: string): Error {
  if (error instanceof BlobSourceError || error instanceof ImportFileError) {
    return error;
  }
  const e = error as { name?: unknown; code?: unknown; message?: unknown };
  const name = typeof e.name === "string" ? e.name : "";
  const code = typeof e.code === "string" ? e.code : undefined;
  const message = typeof e.message === "string" ? e.message.split("\n")[0] : String(error);
  const status = statusOf(error);
  const said = `${code ?? name}${status !== undefined ? ` ${status}` : ""}: ${message}`;
  if (name === "AbortError") {
    return error as Error;
  }
  if (IDENTITY_ERRORS.has(name)) {
    return new BlobSourceError(
      `${where}: no Microsoft Entra credential for the storage account (${said}); set AZURE_STORAGE_ACCOUNT_KEY, put a SAS in the URL, or sign in (managed identity, az login)`,
      EXIT.config,
      { cause: error },
    );
  }
  if (status === 404) {
    return new BlobSourceError(`${where}: no such container in the account (${code ?? "404"})`, EXIT.noInput, {
      cause: error,
    });
  }
  if (status === 401 || status === 403) {
    return new BlobSourceError(
      `${where}: the storage account refused access (${said}); check the key, the SAS (read and list permissions, expiry) or the role (Storage Blob Data Reader)`,
      EXIT.config,
      { cause: error },
    );
  }
  if (
    (code !== undefined && NETWORK_CODES.has(code)) ||
    (status !== undefined && (status >= 500 || status === 408 || status === 429))
  ) {
    return new BlobSourceError(
      `${where}: the storage account is not reachable (${said}); what was imported before is kept: run the same import again later`,
      EXIT.temporary,
      { cause: error },
    );
  }
  if (status !== undefined) {
    return new BlobSourceError(`${where}: the storage account refused the request (${said})`, EXIT.config, {
      cause: error,
    });
  }
  return error instanceof Error ? error : new Error(String(error));
}
