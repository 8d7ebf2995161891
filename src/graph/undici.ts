// undici's Agent and its request API, without the rest of undici. The package's index loads fetch, WebSocket,
// EventSource, the cache stores (node:sqlite), cookies and MIME parsing as it starts, whether used or not; the
// daemon uses one Agent and `request`. Loading just those two modules keeps ~7 MB off every process's resident
// memory (`node src/cli.ts --help`, docs/benchmarks.md change 12). The paths are undici's own files (the package
// has no `exports` map, so they are importable; package-lock.json pins the version, and every Graph test goes
// through them). The types are the package's.

import { createRequire } from "node:module";

import type * as Undici from "undici";

const require = createRequire(import.meta.url);

export const Agent = require("undici/lib/dispatcher/agent.js") as typeof Undici.Agent;
export type Agent = Undici.Agent;
export type { Dispatcher } from "undici";

type RequestOptions = Omit<Undici.Dispatcher.RequestOptions, "origin" | "path" | "method"> & {
  method: NonNullable<Undici.Dispatcher.RequestOptions["method"]>;
};

const apiRequest = require("undici/lib/api/api-request.js") as (
  this: Undici.Dispatcher,
  options: Undici.Dispatcher.RequestOptions,
) => Promise<Undici.Dispatcher.ResponseData>;

/** undici's `request(url, { dispatcher, … })`: the URL split into origin and path as undici's index does. */
export function request(
  url: string,
  options: RequestOptions & { dispatcher: Undici.Dispatcher },
): Promise<Undici.Dispatcher.ResponseData> {
  const { dispatcher, ...rest } = options;
  const u = new URL(url);
  return apiRequest.call(dispatcher, { ...rest, origin: u.origin, path: `${u.pathname}${u.search}` });
}
