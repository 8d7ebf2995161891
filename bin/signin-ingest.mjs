#!/usr/bin/env node
// The command (`npm start`, `npx signin-ingest`): checks the Node version, then runs src/cli.ts with the same
// arguments. On Node ≥ 22.19 `node src/cli.ts …` is the same thing. No top-level await: an old Node must get as far
// as the version check.
import { requireNode } from "./require-node.mjs";

requireNode();
import("../src/cli.ts");
