// An unprivileged account to run the CLI as when the tests run as root (CI does), for what root cannot show: a
// directory it may not write. `nobody` or `postgres`, whichever can run Node and read the CLI. Node under a private
// folder (CI's $HOME/.node24 under /root) is linked (or copied) into a folder the account can reach.

import { execFileSync, spawnSync } from "node:child_process";
import { copyFile, chmod, link, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { CLI, type RunAs } from "./daemon.ts";

export interface Unprivileged extends RunAs {
  name: string;
  /** Removes the linked Node binary, if one was made. */
  cleanup(): Promise<void>;
}

function idOf(name: string): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync("id", ["-u", name], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", name], { encoding: "utf8" }).trim());
    return uid > 0 ? { uid, gid } : undefined;
  } catch {
    return undefined; // no such user
  }
}

/** True when `account` can start `node` and read the CLI's entry point. */
function canRun(node: string, account: { uid: number; gid: number }): boolean {
  const probe = spawnSync(node, ["-e", `require("node:fs").accessSync(${JSON.stringify(CLI)}, 4)`], {
    ...account,
    cwd: "/",
    stdio: "ignore",
  });
  return probe.status === 0;
}

/**
 * An account other than root that can run the CLI, or why there is none. Call only as root (setuid needs it).
 */
export async function unprivilegedAccount(): Promise<Unprivileged | { none: string }> {
  let linked: string | undefined;
  const cleanup = async () => {
    if (linked) {
      await rm(path.dirname(linked), { recursive: true, force: true });
    }
  };
  const reachableNode = async (account: { uid: number; gid: number }): Promise<string | undefined> => {
    if (canRun(process.execPath, account)) {
      return process.execPath;
    }
    if (!linked) {
      const dir = await mkdtemp(path.join(tmpdir(), "signin-node-"));
      await chmod(dir, 0o755);
      linked = path.join(dir, "node");
      // A hard link is a second path to the same file, outside the private folder; another file system: a copy.
      const target = linked;
      await link(process.execPath, target).catch(async () => {
        await copyFile(process.execPath, target);
        await chmod(target, 0o755);
      });
    }
    return canRun(linked, account) ? linked : undefined;
  };
  for (const name of ["nobody", "postgres"]) {
    const account = idOf(name);
    if (!account) {
      continue;
    }
    const node = await reachableNode(account);
    if (node) {
      return { name, ...account, node, cleanup };
    }
  }
  await cleanup();
  return { none: `neither nobody nor postgres can run Node and read ${CLI} (a clone under a private folder?)` };
}
