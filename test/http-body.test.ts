import assert from "node:assert/strict";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";

import { createAgent, type HttpSettings, sendWithRetries } from "../src/graph/http.ts";
import { createLogger } from "../src/log.ts";
import { NO_HTTP_OBSERVER } from "../src/metrics.ts";
import { systemClock } from "../src/time.ts";

// A response body is kept as the bytes received (src/graph/http.ts readBounded), with byte 0 free for the jsonb
// binary version byte: checked here at the HTTP layer, with bodies cut at awkward places.

const PAGE = JSON.stringify({
  value: ["山田 太郎", "Иван Петров", "Zoë", "🙂"].map((n, i) => ({ id: `e${i}`, userDisplayName: n })),
});
const BYTES = Buffer.from(PAGE);

type Reply = (res: ServerResponse) => void;
const replies = new Map<string, Reply>([
  // Content-Length declared: one buffer of that size, filled as chunks arrive.
  ["/declared", (res) => writeInPieces(res, BYTES, 7, { "content-length": String(BYTES.length) })],
  // Chunked, no Content-Length, cut every 3 bytes: through the middle of every multi-byte character.
  ["/chunked", (res) => writeInPieces(res, BYTES, 3, {})],
  // A 3-byte character cut after its first byte at the end of the body: not UTF-8.
  ["/truncated", (res) => writeInPieces(res, Buffer.concat([BYTES, Buffer.from("山").subarray(0, 1)]), 5, {})],
  // A lone continuation byte in the middle.
  ["/stray", (res) => writeInPieces(res, Buffer.concat([BYTES.subarray(0, 10), Buffer.of(0x80), BYTES]), 4, {})],
  ["/empty", (res) => writeInPieces(res, Buffer.alloc(0), 1, { "content-length": "0" })],
]);

function writeInPieces(res: ServerResponse, body: Buffer, size: number, headers: Record<string, string>): void {
  res.writeHead(200, { "content-type": "application/json", ...headers });
  let at = 0;
  const next = (): void => {
    if (at >= body.length) {
      res.end();
      return;
    }
    res.write(body.subarray(at, at + size));
    at += size;
    setImmediate(next);
  };
  next();
}

const server = createServer((req, res) => {
  const reply = replies.get(req.url ?? "");
  if (reply) {
    reply(res);
  } else {
    res.writeHead(404).end();
  }
});
let base = "";
before(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

const settings: HttpSettings = {
  httpTimeoutMs: 10_000,
  maxRetries: 0,
  retryBaseDelayMs: 1,
  maxRetryAfterMs: 1,
  maxPageBytes: 1_000_000,
};
const agent = createAgent(settings);
after(() => agent.close());

function get(path: string) {
  return sendWithRetries(
    agent,
    () => base + path,
    () => ({ method: "GET", headers: {}, signal: AbortSignal.timeout(10_000) }),
    () => ({ done: true }),
    {
      settings,
      clock: systemClock,
      log: createLogger("silent"),
      what: "test page",
      endpoint: "graph",
      observer: NO_HTTP_OBSERVER,
    },
  );
}

test("a body is kept as the bytes received, byte 0 free, whether its length was declared or it came chunked", async () => {
  for (const path of ["/declared", "/chunked"]) {
    const response = await get(path);
    assert.equal(response.body.length, 1 + BYTES.length, path);
    assert.equal(response.body[0], 0, `${path}: byte 0 is left free`);
    assert.ok(response.body.subarray(1).equals(BYTES), `${path}: the exact bytes`);
    assert.equal(response.text, PAGE, `${path}: decoded once read`);
  }
  const empty = await get("/empty");
  assert.deepEqual([empty.body.length, empty.text], [1, ""]);
});

test("a body that is not UTF-8 is refused whole, wherever the bad byte falls", async () => {
  for (const path of ["/truncated", "/stray"]) {
    await assert.rejects(get(path), (error: Error & { code?: string }) => {
      assert.equal(error.code, "invalid_utf8", path);
      assert.match(error.message, /test page: the response body is not valid UTF-8 \(\d+ bytes\); refused/);
      return true;
    });
  }
});
