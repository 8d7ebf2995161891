// The environment a process must start with to get what the image sets (src/runtime.ts re-executes with it): glibc's
// mmap threshold fixed at 128 KB and, unless set or turned off, Node's compile cache in its default folder.
// undefined: nothing to change (GLIBC_TUNABLES already names mmap_threshold, as in the image or by the user's choice),
// or nothing may change: a process started with an IPC channel (child_process.fork: NODE_CHANNEL_FD) would lose it,
// since execve keeps only standard input, output and error.

import { tmpdir } from "node:os";
import path from "node:path";

/** The image's GLIBC_TUNABLES (Dockerfile; test/docker.test.ts keeps them equal). */
export const MMAP_THRESHOLD = "glibc.malloc.mmap_threshold=131072";

export function startSettings(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv | undefined {
  if (/(^|:)glibc\.malloc\.mmap_threshold=/.test(env.GLIBC_TUNABLES ?? "") || env.NODE_CHANNEL_FD !== undefined) {
    return undefined;
  }
  const cache =
    env.NODE_COMPILE_CACHE || env.NODE_DISABLE_COMPILE_CACHE
      ? {}
      : { NODE_COMPILE_CACHE: path.join(tmpdir(), "node-compile-cache") };
  return {
    ...env,
    GLIBC_TUNABLES: env.GLIBC_TUNABLES ? `${env.GLIBC_TUNABLES}:${MMAP_THRESHOLD}` : MMAP_THRESHOLD,
    ...cache,
  };
}
