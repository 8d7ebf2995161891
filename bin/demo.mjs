#!/usr/bin/env node
// `npm run demo`: checks the Node version, then runs src/demo.ts (the same as `node src/demo.ts` on Node ≥ 22.19).
import { requireNode } from "./require-node.mjs";

requireNode();
import("../src/demo.ts").then((demo) => demo.runDemo());
