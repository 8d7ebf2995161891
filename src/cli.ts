#!/usr/bin/env node
// Entry point: `node src/cli.ts <command>`, the image, `npm start` (through bin/signin-ingest.mjs). Kept this small
// on purpose (issue 14): src/runtime.ts runs first (heap settings, and Node's compile cache turned on), and only
// then is the program (src/main.ts) loaded, through the cache. Modules imported statically here would be compiled
// before any code runs, without the cache, by Node's TypeScript stripper, whose memory grows with the largest file
// it strips: with this split only these two small files are stripped, and every other module comes from the cache
// already stripped once it is filled (the first run fills it). Measured: `node src/cli.ts --help` 110 → 100 MB peak
// RSS; bin/signin-ingest.mjs, a JavaScript file, turns the cache on before this file and spares the stripper
// altogether (86 MB, as the image with its cache filled at build time).

import "./runtime.ts";

await import("./main.ts");
