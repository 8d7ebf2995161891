// Azurite, Microsoft's storage emulator, as a real child process: its blob service on a free port (it picks one and
// says which), its files in a temporary folder, and the emulator's well-known development account.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";

/** The emulator's documented development account and key (public, the same for every Azurite). */
export const DEV_ACCOUNT = "devstoreaccount1";
export const DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

export interface Azurite {
  /** The account's blob endpoint (path-style): http://127.0.0.1:<port>/devstoreaccount1 */
  serviceUrl: string;
  connectionString: string;
  close(): Promise<void>;
}

const LISTENING = /successfully listens on http:\/\/127\.0\.0\.1:(\d+)/;

export async function startAzurite(): Promise<Azurite> {
  const location = await mkdtemp(path.join(tmpdir(), "signin-azurite-"));
  const main = path.join(
    path.dirname(createRequire(import.meta.url).resolve("azurite/package.json")),
    "dist/src/blob/main.js",
  );
  // --skipApiVersionCheck: the SDK may speak a newer service version than this Azurite knows; the calls used here
  // are old ones. --disableTelemetry: Azurite reports usage to Microsoft by default.
  const child: ChildProcess = spawn(
    process.execPath,
    [
      main,
      "--blobHost",
      "127.0.0.1",
      "--blobPort",
      "0",
      "--location",
      location,
      "--silent",
      "--skipApiVersionCheck",
      "--disableTelemetry",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = LISTENING.exec(output);
      if (m) {
        resolve(Number(m[1]));
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`azurite exited (${code}) before listening:\n${output}`)));
  });
  const serviceUrl = `http://127.0.0.1:${port}/${DEV_ACCOUNT}`;
  return {
    serviceUrl,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT};AccountKey=${DEV_KEY};BlobEndpoint=${serviceUrl};`,
    /** Stops it (by its pid) and removes its folder; again: nothing. */
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill();
        await exited;
      }
      await rm(location, { recursive: true, force: true });
    },
  };
}
