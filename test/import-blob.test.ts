// `import` straight from Azure Blob Storage, against Azurite (the official emulator, a real child process): the same
// rows as an import of the downloaded tree, idempotently; prefixes, SAS, account keys and hour ranges; a PT1H.json
// appended to while read loses nothing; missing containers, refused credentials and an unreachable account end with
// their exit codes (66, 78, 75), one line and no secret, from the real CLI.

import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";

import {
  BlobServiceClient,
  ContainerSASPermissions,
  generateBlobSASQueryParameters,
  StorageSharedKeyCredential,
} from "@azure/storage-blob";

import { EXIT } from "../src/errors.ts";
import {
  type BlobSettings,
  blobSource,
  BlobSourceError,
  hourOfBlob,
  listBlobs,
  type ListedBlob,
  parseBlobArgument,
  parseBlobUrl,
  wantedBlob,
} from "../src/io/blob.ts";
import { importCommand } from "../src/io/commands.ts";
import { importFiles, importSources, newImportSummary } from "../src/io/import.ts";
import { type Azurite, DEV_ACCOUNT, DEV_KEY, startAzurite } from "./helpers/azurite.ts";
import { startCli } from "./helpers/daemon.ts";
import { silentLog, type TestDatabase } from "./helpers/db.ts";
import { importBed } from "./helpers/import.ts";

const TENANT = "00000000-0000-4000-8000-0000000000bb";
const NOW = new Date("2026-11-28T12:30:00Z");
const TREE = path.join(import.meta.dirname, "fixtures", "azure-monitor", "tree");
const RESOURCE = "resourceId=/tenants/4bbb79f7-5724-4c9e-95f3-de075f6ec090/providers/Microsoft.aadiam";
/** Fast retries: an unreachable account is reported after two quick tries. */
const RETRY = { maxTries: 2, retryDelayInMs: 10, maxRetryDelayInMs: 20 };

const { fresh, deps } = importBed(TENANT, NOW);

let azurite: Azurite;
let service: BlobServiceClient;

/** Every file under the fixture tree, its first folder as the container and the rest as the blob name. */
async function treeFiles(): Promise<Array<{ container: string; name: string; file: string }>> {
  const entries = await readdir(TREE, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => {
      const file = path.join(e.parentPath, e.name);
      const [container = "", ...rest] = path.relative(TREE, file).split(path.sep);
      return { container, name: rest.join("/"), file };
    });
}

before(async () => {
  azurite = await startAzurite();
  service = BlobServiceClient.fromConnectionString(azurite.connectionString);
  // As diagnostic settings write them: append blobs, one append per {"records": …} object or line batch.
  for (const { container, name, file } of await treeFiles()) {
    const containerClient = service.getContainerClient(container);
    await containerClient.createIfNotExists();
    const blob = containerClient.getAppendBlobClient(name);
    await blob.create();
    const text = await readFile(file);
    await blob.appendBlock(text, text.length);
  }
});

after(async () => {
  await azurite?.close();
});

function settings(extra: Partial<BlobSettings> = {}): BlobSettings {
  return { connectionString: azurite.connectionString, accountKey: undefined, retry: RETRY, ...extra };
}

/** `import` as the CLI's table runs it (blob settings from the configuration): its exit code and output. */
async function runImport(
  db: TestDatabase,
  argv: string[],
  blob: BlobSettings = settings(),
): Promise<{ code: number; text: string; errors: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let text = "";
  let errors = "";
  out.on("data", (c: Buffer) => (text += c.toString()));
  err.on("data", (c: Buffer) => (errors += c.toString()));
  const code = await importCommand(argv, {
    pool: db.pool,
    log: silentLog,
    tenants: [TENANT],
    out,
    err,
    now: () => NOW,
    blob,
  });
  return { code, text, errors };
}

const TABLES = [
  "sign_ins",
  "sign_in_ca_policies",
  "sign_in_authentication_details",
  "directory_audits",
  "directory_audit_targets",
  "directory_audit_modified_properties",
  "rejected_events",
];

/** Every stored row of the event tables, whole (raw as text, typed columns, child rows), in a stable order. */
async function everything(db: TestDatabase): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const table of TABLES) {
    const r = await db.pool.query<{ row: string }>(`select to_jsonb(t)::text as row from ${table} t order by 1`);
    out[table] = r.rows.map((x) => x.row);
  }
  return out;
}

async function rowVersions(db: TestDatabase): Promise<unknown[]> {
  const r = await db.pool.query(
    `select 'sign_ins' as t, id, xmin::text, revision from sign_ins
     union all select 'directory_audits', id, xmin::text, revision from directory_audits order by 1, 2`,
  );
  return r.rows;
}

describe("import from a storage account (Azurite)", () => {
  it("gives the same rows as importing the downloaded tree, in the same order, and again changes nothing", async () => {
    const fromDisk = await fresh();
    const local = await importFiles([TREE], deps(fromDisk));
    const fromBlob = await fresh();
    const { code, text } = await runImport(fromBlob, ["--from-blob", "insights-logs-*"]);
    assert.equal(code, EXIT.ok, text);

    const disk = await everything(fromDisk);
    assert.ok((disk.sign_ins?.length ?? 0) > 0 && (disk.directory_audits?.length ?? 0) > 0);
    assert.deepEqual(await everything(fromBlob), disk);
    // The blobs were read in the tree's path order, each as one source named container/blob.
    const localOrder = local.files.map((f) => path.relative(TREE, f.file).split(path.sep).join("/"));
    const blobOrder = [...text.matchAll(/^(insights-logs-[^:]+): /gm)].map((m) => m[1]);
    assert.deepEqual(blobOrder, localOrder);
    const t = local.totals;
    assert.match(
      text,
      new RegExp(`${local.files.length} file\\(s\\), read ${t.read}, inserted ${t.inserted}, updated 0, unchanged 0`),
    );

    const before = await rowVersions(fromBlob);
    const again = await runImport(fromBlob, ["--from-blob", "insights-logs-*"]);
    assert.equal(again.code, EXIT.ok);
    assert.match(again.text, new RegExp(`read ${t.read}, inserted 0, updated 0, unchanged ${t.read}`));
    assert.deepEqual(await rowVersions(fromBlob), before, "nothing rewritten");
  });

  it("reads a URL's container and prefix with an account key, or with a SAS, and --since/--until pick hours", async () => {
    const url = `${azurite.serviceUrl}/insights-logs-signinlogs/${RESOURCE}/y=2026/m=01/d=02/h=01`;
    const byKey = await fresh();
    const keyed = await runImport(byKey, [url], settings({ connectionString: undefined, accountKey: DEV_KEY }));
    assert.equal(keyed.code, EXIT.ok, keyed.text + keyed.errors);
    assert.match(keyed.text, /^insights-logs-signinlogs\/resourceId=.*\/h=01\/m=00\/PT1H\.json: /m);
    assert.match(keyed.text, /: 1 file\(s\)/);

    const sas = generateBlobSASQueryParameters(
      {
        containerName: "insights-logs-signinlogs",
        permissions: ContainerSASPermissions.parse("r"),
        expiresOn: new Date(Date.now() + 3_600_000),
      },
      new StorageSharedKeyCredential(DEV_ACCOUNT, DEV_KEY),
    ).toString();
    const bySas = await fresh();
    // A container SAS with read only cannot list; with list it can.
    const readOnly = await runImport(bySas, [`${azurite.serviceUrl}/insights-logs-signinlogs?${sas}`], settings());
    assert.equal(readOnly.code, EXIT.config, readOnly.errors);
    const listSas = generateBlobSASQueryParameters(
      {
        containerName: "insights-logs-signinlogs",
        permissions: ContainerSASPermissions.parse("rl"),
        expiresOn: new Date(Date.now() + 3_600_000),
      },
      new StorageSharedKeyCredential(DEV_ACCOUNT, DEV_KEY),
    ).toString();
    const sasRun = await runImport(bySas, [`${azurite.serviceUrl}/insights-logs-signinlogs?${listSas}`], settings());
    assert.equal(sasRun.code, EXIT.ok, sasRun.errors);
    assert.match(sasRun.text, /: 2 file\(s\)/);
    const sig = new URLSearchParams(listSas).get("sig") ?? "";
    assert.ok(sig.length > 10 && !sasRun.text.includes(sig) && !readOnly.errors.includes(sig));
    // The same SAS in a connection string (off the command line): the same blobs, nothing new to store.
    const sasConnection = `BlobEndpoint=${azurite.serviceUrl};SharedAccessSignature=${listSas}`;
    const viaEnv = await runImport(
      bySas,
      ["--from-blob", "insights-logs-signinlogs"],
      settings({ connectionString: sasConnection }),
    );
    assert.equal(viaEnv.code, EXIT.ok, viaEnv.errors);
    assert.match(viaEnv.text, /: 2 file\(s\), read \d+, inserted 0, updated 0, unchanged \d+/);

    const noCredential = await runImport(bySas, [url], settings({ connectionString: undefined }));
    assert.equal(noCredential.code, EXIT.config);
    assert.match(
      noCredential.errors,
      /Entra ID credentials are sent over https only; .* set AZURE_STORAGE_ACCOUNT_KEY/,
    );
    const noConnectionString = await runImport(
      bySas,
      ["--from-blob", "x-y"],
      settings({ connectionString: undefined }),
    );
    assert.equal(noConnectionString.code, EXIT.config);
    assert.match(noConnectionString.errors, /AZURE_STORAGE_CONNECTION_STRING is not set/);

    const ranged = await fresh();
    const hours = await runImport(ranged, ["--from-blob", "insights-logs-*", "--since", "2026-01-02T01:00:00Z"]);
    assert.equal(hours.code, EXIT.ok, hours.errors);
    const names = [...hours.text.matchAll(/^(insights-logs-[^:]+): /gm)].map((m) => m[1] ?? "");
    assert.ok(names.length > 0 && names.every((n) => n.includes("/h=01/")), names.join("\n"));
    const none = await runImport(ranged, ["--from-blob", "insights-logs-*", "--until", "2026-01-01T00:00:00Z"]);
    assert.equal(none.code, EXIT.noInput);
    assert.match(none.errors, /no \.json or \.jsonl blob of the hours asked/);
  });

  it("a PT1H.json appended to after it was listed is read to its new end, and its open hour is reported", async () => {
    const container = service.getContainerClient("live-signinlogs");
    await container.createIfNotExists();
    const open = container.getAppendBlobClient(`${RESOURCE}/y=2026/m=11/d=28/h=12/m=00/PT1H.json`);
    const closed = container.getAppendBlobClient(`${RESOURCE}/y=2026/m=11/d=28/h=10/m=00/PT1H.json`);
    const record = (i: number, hour: number) =>
      JSON.stringify({
        time: `2026-11-28T${hour}:0${i}:00.0000000Z`,
        category: "SignInLogs",
        operationName: "Sign-in activity",
        properties: {
          id: `live-${hour}-${i}`,
          createdDateTime: `2026-11-28T${hour}:0${i}:00Z`,
          status: { errorCode: 0 },
        },
      }) + "\n";
    const lengths: number[] = [];
    for (const [blob, hour] of [
      [closed, 10],
      [open, 12],
    ] as const) {
      await blob.create();
      const first = record(1, hour) + record(2, hour);
      await blob.appendBlock(first, Buffer.byteLength(first));
      lengths.push(Buffer.byteLength(first));
    }
    const target = parseBlobArgument("live-signinlogs");
    assert.ok(!("problem" in target));
    const listed = [];
    for await (const blob of listBlobs(target, settings(), {})) {
      listed.push(blob);
    }
    assert.deepEqual(
      listed.map((b) => [b.name.slice(-24), b.length]),
      [
        ["d=28/h=10/m=00/PT1H.json", lengths[0]],
        ["d=28/h=12/m=00/PT1H.json", lengths[1]],
      ],
    );
    // Diagnostic settings append to the open hour's blob after the listing. Read without re-reading, the blob gives
    // what it held when listed, and says it grew.
    const append = async (i: number) => {
      const more = record(i, 12);
      await open.appendBlock(more, Buffer.byteLength(more));
    };
    await append(3);
    const db = await fresh();
    const ids = async () =>
      (await db.pool.query<{ id: string }>("select id from sign_ins order by id")).rows.map((r) => r.id);
    const asListed = await importSources([blobSource(listed[1]!, () => NOW, { maxRereads: 0 })], deps(db));
    assert.deepEqual(await ids(), ["live-12-1", "live-12-2"]);
    assert.match(
      asListed.files[0]?.notes?.[0] ?? "",
      /^it grew while read \(\d+ of its \d+ bytes read, after 0 re-read\(s\)\)/,
    );
    // With re-reads (the default), the same listing is read to the blob's new end, again after another append.
    await append(4);
    const summary = await importSources(
      listed.map((b) => blobSource(b, () => NOW)),
      deps(db),
    );
    assert.equal(summary.failed, 0);
    assert.deepEqual(await ids(), ["live-10-1", "live-10-2", "live-12-1", "live-12-2", "live-12-3", "live-12-4"]);
    assert.deepEqual([summary.totals.inserted, summary.totals.unchanged], [4, 2]);
    assert.equal(summary.files[0]?.notes, undefined, "10:00 is over (and settled) at 12:30");
    assert.deepEqual(summary.files[1]?.notes?.length, 1, "read to its end: only the open hour is noted");
    assert.match(
      summary.files[1]?.notes?.[0] ?? "",
      /its hour \(2026-11-28T12:00Z\) is not over.*after 2026-11-28T13:15/,
    );
    await container.delete();
  });

  it("a blob deleted between listing and reading is reported as failed, the others are imported", async () => {
    const container = service.getContainerClient("gone-signinlogs");
    await container.createIfNotExists();
    const text = (
      await readFile((await treeFiles()).find((f) => f.container === "insights-logs-signinlogs")!.file)
    ).toString();
    for (const hour of ["h=00", "h=01"]) {
      await container
        .getBlockBlobClient(`${RESOURCE}/y=2026/m=01/d=02/${hour}/m=00/PT1H.json`)
        .upload(text, text.length);
    }
    const target = parseBlobArgument("gone-signinlogs");
    assert.ok(!("problem" in target));
    const listed = [];
    for await (const blob of listBlobs(target, settings(), {})) {
      listed.push(blob);
    }
    await container.getBlobClient(listed[0]?.name ?? "").delete();
    const summary = await importSources(
      listed.map((b) => blobSource(b, () => NOW)),
      deps(await fresh()),
    );
    assert.equal(summary.failed, 1);
    assert.match(summary.files[0]?.error ?? "", /the blob was deleted after it was listed/);
    assert.ok(summary.files[1]?.error === undefined && (summary.files[1]?.inserted ?? 0) > 0);
    await container.delete();
  });
});

describe("a storage account that goes away between two blobs", () => {
  it("stops with 75 (temporary), what was stored before kept and reported", async () => {
    const own = await startAzurite();
    try {
      const container = BlobServiceClient.fromConnectionString(own.connectionString).getContainerClient("logs-a");
      await container.create();
      const text = await readFile((await treeFiles()).find((f) => f.container === "insights-logs-signinlogs")!.file);
      for (const hour of ["h=00", "h=01"]) {
        await container.getBlockBlobClient(`y=2026/m=01/d=02/${hour}/m=00/PT1H.json`).upload(text, text.length);
      }
      const target = parseBlobArgument("logs-a");
      assert.ok(!("problem" in target));
      const blobSettings = { connectionString: own.connectionString, accountKey: undefined, retry: RETRY };
      const listed: ListedBlob[] = [];
      for await (const blob of listBlobs(target, blobSettings, {})) {
        listed.push(blob);
      }
      // The account stops answering once the first blob is imported.
      async function* sources() {
        yield blobSource(listed[0]!, () => NOW);
        await own.close();
        yield blobSource(listed[1]!, () => NOW);
      }
      const summary = newImportSummary();
      const db = await fresh();
      await assert.rejects(importSources(sources(), deps(db), summary), (error: unknown) => {
        assert.ok(error instanceof BlobSourceError);
        assert.equal(error.exitCode, EXIT.temporary);
        assert.match(
          error.message,
          /^blob logs-a\/y=2026.*h=01.*: the storage account is not reachable \(ECONNREFUSED/,
        );
        return true;
      });
      assert.equal(summary.files.length, 1);
      const stored = await db.pool.query<{ n: number }>("select count(*)::int as n from sign_ins");
      assert.equal(stored.rows[0]?.n, summary.files[0]?.inserted);
      assert.ok((summary.files[0]?.inserted ?? 0) > 0);
    } finally {
      await own.close();
    }
  });
});

describe("blob sources, parsed", () => {
  it("account URLs host-style (any cloud) and path-style (emulators), a SAS kept apart, bad names refused", () => {
    const host = parseBlobUrl(
      "https://acct.blob.core.usgovcloudapi.net/insights-logs-signinlogs/resourceId=/tenants/t/y=2026?sv=1&sig=c2VjcmV0c2lnbmF0dXJl",
    );
    assert.ok(!("problem" in host));
    assert.deepEqual(
      [host.serviceUrl, host.container, host.prefix, host.sas],
      [
        "https://acct.blob.core.usgovcloudapi.net",
        "insights-logs-signinlogs",
        "resourceId=/tenants/t/y=2026",
        "sv=1&sig=c2VjcmV0c2lnbmF0dXJl",
      ],
    );
    assert.ok(!host.display.includes("c2VjcmV0c2lnbmF0dXJl") && host.display.includes("sig=[redacted]"));
    const pathStyle = parseBlobUrl("http://127.0.0.1:10000/devstoreaccount1/insights-logs-*");
    assert.ok(!("problem" in pathStyle));
    assert.deepEqual(
      [pathStyle.serviceUrl, pathStyle.container, pathStyle.prefix],
      ["http://127.0.0.1:10000/devstoreaccount1", "insights-logs-*", ""],
    );
    const named = parseBlobArgument("insights-logs-auditlogs/resourceId=/tenants");
    assert.ok(!("problem" in named));
    assert.deepEqual(
      [named.serviceUrl, named.container, named.prefix],
      [undefined, "insights-logs-auditlogs", "resourceId=/tenants"],
    );
    for (const bad of [
      "https://acct.blob.core.windows.net/",
      "http://127.0.0.1:10000/",
      "Insights/x",
      "a",
      "-ab/c",
      "https://[x",
      "https://a.blob.core.windows.net/logs/%zz",
    ]) {
      assert.ok("problem" in parseBlobArgument(bad), bad);
    }
  });

  it("the hour of a y=/m=/d=/h= path, and which blobs an hour range keeps", () => {
    const name = `${RESOURCE}/y=2026/m=01/d=02/h=05/m=00/PT1H.json`;
    assert.equal(hourOfBlob(name)?.toISOString(), "2026-01-02T05:00:00.000Z");
    assert.equal(hourOfBlob("y=2026/m=02/d=30/h=00/m=00/PT1H.json"), undefined, "no 30 February");
    assert.equal(hourOfBlob("exports/2026-01-02.jsonl"), undefined);
    const at = (iso: string) => new Date(iso);
    assert.ok(wantedBlob(name, {}));
    assert.ok(!wantedBlob(name.replace(".json", ".txt"), {}));
    assert.ok(wantedBlob(name, { since: at("2026-01-02T05:59:00Z") }), "the hour overlaps since");
    assert.ok(!wantedBlob(name, { since: at("2026-01-02T06:00:00Z") }));
    assert.ok(wantedBlob(name, { until: at("2026-01-02T05:00:01Z") }));
    assert.ok(!wantedBlob(name, { until: at("2026-01-02T05:00:00Z") }), "until is exclusive");
    assert.ok(!wantedBlob("exports/2026-01-02.jsonl", { since: at("2026-01-01T00:00:00Z") }), "no hour: left out");
  });
});

describe("import from a storage account fails clearly (the real CLI)", () => {
  let db: TestDatabase;
  before(async () => {
    db = await fresh();
  });
  const env = (extra: Record<string, string>) => ({
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/tmp",
    DATABASE_URL: db.url,
    RETRY_BASE_DELAY: "10ms",
    MAX_RETRIES: "1",
    LOG_LEVEL: "debug",
    ...extra,
  });
  const cli = (args: string[], extra: Record<string, string>) =>
    startCli(["import", "--tenant", TENANT, ...args], env(extra)).finished;

  it("reads the account of AZURE_STORAGE_CONNECTION_STRING; a missing container is 66", async () => {
    const ok = await cli(["--from-blob", "insights-logs-auditlogs"], {
      AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
    });
    assert.equal(ok.code, EXIT.ok, ok.stderr);
    assert.match(ok.stdout, /insights-logs-auditlogs\/resourceId=.*PT1H\.json: /);
    const missing = await cli(["--from-blob", "no-such-container"], {
      AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
    });
    assert.equal(missing.code, EXIT.noInput, missing.stderr);
    assert.match(
      missing.stderr,
      /^import: no-such-container: no such container in the account \(ContainerNotFound\)$/m,
    );
    assert.doesNotMatch(missing.stderr + missing.stdout, /\n\s+at /, "no stack trace");
    assert.ok(!(missing.stderr + missing.stdout).includes(DEV_KEY), "the account key is never shown");
  });

  it("a forged SAS is 78 with its signature redacted, a wrong key is 78, an unreachable account is 75", async () => {
    const forged = "sv=2024-08-04&sr=c&sp=rl&se=2099-01-01T00%3A00%3A00Z&sig=Zm9yZ2VkLXNpZ25hdHVyZS0xMjM0NTY3ODkw";
    const sas = await cli([`${azurite.serviceUrl}/insights-logs-signinlogs?${forged}`], {});
    assert.equal(sas.code, EXIT.config, sas.stderr);
    assert.match(sas.stderr, /refused access \(AuthorizationFailure 403/);
    assert.ok(!(sas.stdout + sas.stderr).includes("Zm9yZ2VkLXNpZ25hdHVyZS0xMjM0NTY3ODkw"), "signature redacted");
    assert.match(sas.stderr, /sig=\[redacted\]/);

    const wrongKey = await cli([`${azurite.serviceUrl}/insights-logs-signinlogs`], {
      AZURE_STORAGE_ACCOUNT_KEY: Buffer.from("not the key".repeat(6)).toString("base64"),
    });
    assert.equal(wrongKey.code, EXIT.config, wrongKey.stderr);

    const unreachable = await cli(["http://127.0.0.1:9/devstoreaccount1/insights-logs-signinlogs"], {
      AZURE_STORAGE_ACCOUNT_KEY: DEV_KEY,
    });
    assert.equal(unreachable.code, EXIT.temporary, unreachable.stderr);
    assert.match(unreachable.stderr, /not reachable \(ECONNREFUSED/);
    for (const run of [sas, wrongKey, unreachable]) {
      assert.doesNotMatch(run.stderr + run.stdout, /\n\s+at /, "no stack trace");
    }
  });
});
