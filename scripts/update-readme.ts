// Rewrites the configuration table in README.md from the schema (`npm run docs:config`).
import { readFileSync, writeFileSync } from "node:fs";

import { configTableMarkdown } from "../src/config.ts";

const path = new URL("../README.md", import.meta.url);
const readme = readFileSync(path, "utf8");
const start = "<!-- config-table:start -->\n";
const end = "\n<!-- config-table:end -->";
const from = readme.indexOf(start);
const to = readme.indexOf(end);
if (from < 0 || to < 0) {
  throw new Error("README.md lacks the config-table markers");
}
writeFileSync(path, readme.slice(0, from + start.length) + configTableMarkdown() + readme.slice(to));
