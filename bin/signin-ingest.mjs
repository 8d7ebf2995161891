#!/usr/bin/env node
// The command (`npm start`, `npx signin-ingest`): checks the Node version, then runs src/cli.ts with the same
// arguments. On Node ≥ 22.19 `node src/cli.ts …` is the same thing. No top-level await: an old Node must get as far
// as the version check.
//
// Node's compile cache is turned on here, before any TypeScript is loaded (src/runtime.ts turns it on again, which
// is harmless): every module, src/cli.ts included, then comes from the cache already stripped of its types once the
// cache is filled, and Node never loads its TypeScript stripper (~18 MB resident). The cache is NODE_COMPILE_CACHE,
// else Node's folder in the system's temporary directory; NODE_DISABLE_COMPILE_CACHE=1 turns it off. (On Linux
// src/runtime.ts re-executes the process once with the image's start settings, as it does for `node src/cli.ts`.)
import module from "node:module";

import { requireNode } from "./require-node.mjs";

requireNode();
module.enableCompileCache?.();
import("../src/cli.ts");
