// Process settings every command gets, however it is started (`node src/cli.ts …`, `npm start`, the image): imported
// first by src/cli.ts, so it runs before any other module's top-level code.
//
// * What only the process's start can set, the image sets in its environment: glibc's mmap threshold fixed at
//   128 KB (GLIBC_TUNABLES; glibc otherwise raises it after the first large buffer is freed, a page's 8 MB query
//   message, and keeps later ones in its heap once freed) and Node's compile cache (NODE_COMPILE_CACHE) on before
//   the entry file loads (so Node's TypeScript stripper, ~18 MB resident, is never loaded once the cache is filled).
//   A plain `node src/cli.ts` gets the same: on Linux, when GLIBC_TUNABLES names no mmap_threshold, the process
//   replaces itself once (process.execve: the same pid, arguments, Node flags, standard input, output and error, and
//   environment, plus those two variables) before any other module loads; not when started with an IPC channel.
//   NODE_COMPILE_CACHE is added only when it is unset and NODE_DISABLE_COMPILE_CACHE is not; any GLIBC_TUNABLES
//   naming mmap_threshold (the image's, a user's) means no re-exec (src/start-settings.ts). Measured (docs/benchmarks.md change 13): `once` over 10,000 real-sized sign-ins ~193 → ~166 MB peak
//   (medians of six runs).
// * The young generation stops growing at 2 × 4 MB, as with the image's NODE_OPTIONS (--max-semi-space-size=4). V8
//   doubles it (up to 2 × 64 MB on a large host) each time enough bytes survived its scavenges since the last
//   growth, so in a long run (a catch-up, an import of a big archive) it always ends at its maximum, and the peak RSS
//   grows with the run's length rather than its work. --max-semi-space-size can only be given on the command line,
//   but the growth factor is read each time V8 grows the space: a timer sets it to 1 once the space reached 8 MB.
// * The old generation is collected once it grew 50 % past what the last full collection kept (V8's default lets
//   it grow several times its live size on a large host; the setting is read at each collection): a page's parsed
//   events, promoted while it is checked, are freed soon instead of piling up.
//   Measured (docs/benchmarks.md): `import` of 8,000 real-sized sign-ins peaked at 281 MB without the young
//   generation bound; `once` catching up 20,000 at 304 MB without either setting, ~180-200 MB with them.
//   (Stricter settings, 1-2 MB young generation and 20 % growth, saved another ~15 MB but cost enough CPU to slow
//   the fault campaign's daemons by a third on a loaded machine.)
// * Node's compile cache for every module loaded from here on, where the re-exec above did not happen (not Linux,
//   execve refused, GLIBC_TUNABLES already set without NODE_COMPILE_CACHE): src/cli.ts imports only this module
//   before it loads the program (src/main.ts), so all of it comes from the cache, already stripped of its types,
//   once the cache is filled. Only src/cli.ts and this file are then stripped by Node's TypeScript stripper:
//   `node src/cli.ts --help` peaks at 100 MB instead of 110 MB (81 MB with the cache on from the start). The cache
//   is NODE_COMPILE_CACHE, else Node's folder in the system's temporary directory; NODE_DISABLE_COMPILE_CACHE=1
//   turns it off.

import module from "node:module";
import v8 from "node:v8";

import { startSettings } from "./start-settings.ts";

const restart = process.platform === "linux" && process.execve && startSettings(process.env);
if (restart) {
  try {
    process.execve?.(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], restart);
  } catch {
    // Not allowed here (a sandbox refusing execve): go on with this process's settings.
  }
}

const YOUNG_GENERATION_CAP = 8 * 1024 * 1024;

v8.setFlagsFromString("--heap-growing-percent=50");
const young = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space")?.space_size ?? 0;
if (young() >= YOUNG_GENERATION_CAP) {
  v8.setFlagsFromString("--semi-space-growth-factor=1");
} else {
  const watch = setInterval(() => {
    if (young() >= YOUNG_GENERATION_CAP) {
      v8.setFlagsFromString("--semi-space-growth-factor=1");
      clearInterval(watch);
    }
  }, 50);
  watch.unref();
}
module.enableCompileCache?.();
