#!/usr/bin/env node
// Entry point: `node src/cli.ts <command>`, the image, `npm start` (through bin/signin-ingest.mjs). Kept this small
// on purpose (issue 14): src/runtime.ts runs first (heap settings, and Node's compile cache turned on), and only
// then is the program (src/main.ts) loaded, through the cache. Modules imported statically here would be compiled
// before any code runs, without the cache, by Node's TypeScript stripper, whose memory grows with the largest file
// it strips: with this split only these two small files are stripped, and every other module comes from the cache
// already stripped once it is filled (the first run fills it). Measured: `node src/cli.ts --help` 110 → 100 MB peak
// RSS. On Linux src/runtime.ts then re-executes the process with NODE_COMPILE_CACHE set before it starts, so even
// these two files come from the cache and the stripper is never loaded (81 MB, as `npm start` and the image).

import "./runtime.ts";

await import("./main.ts");
