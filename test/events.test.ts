import assert from "node:assert/strict";
import { test } from "node:test";

import { isGraphDateTime, pageEvents, classifyParsedEvents } from "../src/events/classify.ts";
import {
  elementOf,
  elementText,
  JSONB_BINARY_VERSION,
  jsonbArray,
  jsonbBytes,
  jsonbProblem,
  MAX_JSON_DEPTH,
  numericProblem,
  scanPage,
  splitPage,
  utf8Text,
} from "../src/events/jsonb.ts";

test("Graph timestamps: 0..7 fractional digits with a zone are accepted; the rest is not", () => {
  for (const ok of ["2026-11-28T12:00:00Z", "2026-11-28T12:00:00.1834571Z", "2026-11-28T12:00:00.5+01:00"]) {
    assert.ok(isGraphDateTime(ok), ok);
  }
  for (const bad of [
    "garbage",
    "2026-11-28",
    "2026-11-28T12:00:00",
    "2026-13-40T12:00:00Z",
    "9999-12-31T00:00:00Z",
    "2026-02-30T10:00:00Z",
    "2026-11-28T12:00:00+23:59",
    "2026-11-28T24:00:00Z",
    "2026-11-28T12:00:60Z",
    5,
    null,
  ]) {
    assert.ok(!isGraphDateTime(bad), String(bad));
  }
});

test("events without id or with bad dates are set aside with a reason; the rest are kept", () => {
  const classified = classifyParsedEvents([
    { id: "a", createdDateTime: "2026-11-28T12:00:00Z" },
    { createdDateTime: "2026-11-28T12:00:00Z" },
    { id: "", createdDateTime: "2026-11-28T12:00:00Z" },
    { id: 7, createdDateTime: "2026-11-28T12:00:00Z" },
    { id: "b", createdDateTime: "yesterday" },
    "not an object",
    null,
    { id: "c", createdDateTime: "2026-11-28T12:00:01Z" },
  ]);
  assert.deepEqual(
    classified.valid.map((e) => e.id),
    ["a", "c"],
  );
  assert.deepEqual(
    classified.rejected.map((r) => r.reason),
    [
      "missing or empty id",
      "missing or empty id",
      "missing or empty id",
      "missing or unparsable createdDateTime",
      "not a JSON object",
      "not a JSON object",
    ],
  );
  assert.equal(classified.rejected[4]?.rawText, '"not an object"');
});

test("an id repeated within a page is stored once, the later copy winning", () => {
  const classified = classifyParsedEvents([
    { id: "a", createdDateTime: "2026-11-28T12:00:00Z", v: 1 },
    { id: "a", createdDateTime: "2026-11-28T12:00:00Z", v: 2 },
  ]);
  assert.equal(classified.valid.length, 1);
  assert.equal(classified.valid[0]?.raw.v, 2);
  assert.equal(classified.duplicates, 1);
});

test("the page scan finds each event's exact text and what PostgreSQL would refuse in it", () => {
  const text =
    '{"@odata.context":"c","value":[{"id":"a","n":1e999999} , {"id":"b\\"q","s":"\\ud83d\\ude00"},5,"s",[[[]]],' +
    '{"k\\u0000":1},{"x":"\\ud800"},{"d":' +
    "[".repeat(MAX_JSON_DEPTH) +
    "]".repeat(MAX_JSON_DEPTH) +
    "}]," +
    '"@odata.nextLink":"https://graph.example/next"}';
  const scan = scanPage(text);
  const { elements, outside } = scan;
  assert.equal(outside, undefined);
  const deepest = `{"d":${"[".repeat(MAX_JSON_DEPTH)}${"]".repeat(MAX_JSON_DEPTH)}}`;
  assert.deepEqual(
    elements.map((_, i) => elementText(scan, i)),
    [
      '{"id":"a","n":1e999999}',
      '{"id":"b\\"q","s":"\\ud83d\\ude00"}',
      "5",
      '"s"',
      "[[[]]]",
      '{"k\\u0000":1}',
      '{"x":"\\ud800"}',
      deepest,
    ],
  );
  assert.equal(elements.length, (JSON.parse(text) as { value: unknown[] }).value.length);
  assert.deepEqual(
    elements.map((e) => e.problem?.replace(/ .*/, "") ?? "ok"),
    ["holds", "ok", "ok", "ok", "ok", "holds", "holds", "nested"],
  );
  assert.match(elements[0]?.problem ?? "", /1e999999, outside the range of PostgreSQL's numeric type/);
  assert.match(elements[5]?.problem ?? "", /U\+0000/);
  assert.match(elements[6]?.problem ?? "", /unpaired UTF-16 surrogate/);
  // MAX_JSON_DEPTH levels inside an event are fine; one more is not.
  assert.equal(jsonbProblem(`{"d":${"[".repeat(MAX_JSON_DEPTH - 1)}${"]".repeat(MAX_JSON_DEPTH - 1)}}`), undefined);
  // Outside the events: the page cannot be sent as it is, its events still can.
  assert.match(scanPage('{"value":[],"@odata.nextLink":"x\\udfff"}').outside ?? "", /surrogate/);
  // The last of duplicate "value" keys is the event array, as for JSON.parse and PostgreSQL.
  const dup = '{"value":[{"id":"old"}],"value":[{"id":"new"},{"id":"newer"}]}';
  const dupScan = scanPage(dup);
  assert.deepEqual(
    dupScan.elements.map((_, i) => elementText(dupScan, i)),
    ['{"id":"new"}', '{"id":"newer"}'],
  );
  // A bare array of events.
  assert.deepEqual(scanPage('[{"id":1}, 2]').elements.length, 2);
});

test("a page is held as its UTF-8 bytes, whatever the script of its names, and its events come out exact", () => {
  const names = ["山田 太郎", "Иван Петров", "김민준", "Σοφία", "שרה כהן", "Zoë Brontë", "🙂 team", "ascii"];
  const value = names.map((n, i) => ({ id: `e${i}`, createdDateTime: "2026-11-28T10:00:00Z", userDisplayName: n }));
  const text = JSON.stringify({ value, "@odata.nextLink": "https://graph.example/next?city=東京" });
  const { envelope, scan } = splitPage(jsonbBytes(text));
  // One byte per byte of UTF-8 (a JavaScript string of this text would take two bytes per character).
  assert.equal(scan.bytes.length, 1 + Buffer.byteLength(text));
  assert.deepEqual(envelope, { value: [], "@odata.nextLink": "https://graph.example/next?city=東京" });
  assert.deepEqual(
    scan.elements.map((_, i) => elementText(scan, i)),
    value.map((v) => JSON.stringify(v)),
  );
  const { valid, events } = pageEvents(scan);
  assert.deepEqual(
    valid.map((e) => e.id),
    names.map((_, i) => `e${i}`),
  );
  assert.equal(events.text, scan.bytes, "stored as received, not re-encoded");
});

test("a batch of event texts becomes one JSON array in jsonb's binary input, byte for byte", () => {
  const texts = ['{"id":"a","city":"東京"}', '{"id":"b","n":1e999999}', '{"id":"c","name":"Zoë 🙂"}'];
  for (const batch of [texts, texts.slice(0, 1), []]) {
    const bytes = jsonbArray(batch);
    assert.equal(bytes[0], 1, "jsonb's binary format version");
    assert.equal(bytes.toString("utf8", 1), `[${batch.join(",")}]`);
    assert.equal(bytes.length, 1 + Buffer.byteLength(`[${batch.join(",")}]`), "no byte left unwritten");
  }
});

test("numbers: out of PostgreSQL's numeric range exactly when the scale or weight overflows", () => {
  for (const ok of ["0", "-1.5", "1e131071", "1e-16383", "0e999999", "12345678901234567890", "1.000e-16380"]) {
    assert.equal(numericProblem(ok), undefined, ok);
  }
  for (const bad of ["1e999999", "-1e131072", "1e-16384", "0e-16384", "0.1e-16383", "1e99999999999999999999"]) {
    assert.ok(numericProblem(bad), bad);
  }
});

test("a page with a poison event is sent as its valid events' own texts; a clean one as received, with a skip mask", () => {
  const deep = `[${"[".repeat(5000)}${"]".repeat(5000)}]`;
  const text =
    `{"value":[{"id":"a","createdDateTime":"2026-11-28T10:00:00Z","big":12345678901234567890},` +
    `{"createdDateTime":"2026-11-28T10:00:00Z","deep":${deep}},{"id":"c","createdDateTime":"2026-11-28T10:00:01Z"}]}`;
  const { valid, rejected, events } = pageEvents(splitPage(text).scan);
  assert.deepEqual(
    valid.map((e) => e.id),
    ["a", "c"],
  );
  assert.equal(rejected.length, 1, "5,000 levels inside a rejected item: no RangeError");
  assert.match(rejected[0]?.reason ?? "", /nested deeper than/);
  assert.ok(rejected[0]?.rawText.endsWith(`"deep":${deep}}`), "the exact text");
  assert.equal(
    events.text,
    '[{"id":"a","createdDateTime":"2026-11-28T10:00:00Z","big":12345678901234567890},{"id":"c","createdDateTime":"2026-11-28T10:00:01Z"}]',
    "each event's own text: a number beyond a double keeps its digits",
  );
  assert.deepEqual([events.skip, events.count], [[], 2]);

  const clean = '{"value":[{"id":"a","createdDateTime":"2026-11-28T10:00:00Z"},{"id":"b"}]}';
  const page = pageEvents(splitPage(clean).scan);
  assert.ok(Buffer.isBuffer(page.events.text) && page.events.text[0] === JSONB_BINARY_VERSION, "jsonb binary");
  assert.equal(utf8Text(page.events.text), clean, "the page's own bytes");
  assert.deepEqual(page.events.skip, [false, true]);
  assert.equal(page.rejected[0]?.rawText, '{"id":"b"}');
});

/** What the reader concludes of a page text: JSON or not, and if so its envelope and events (parsed one by one). */
function readSplit(text: string): { ok: false } | { ok: true; envelope: unknown; events: unknown[] } {
  try {
    const { envelope, scan } = splitPage(text);
    const events = scan.elements.map((_, i) => elementOf(scan, i));
    return { ok: true, envelope, events };
  } catch (error) {
    assert.ok(error instanceof SyntaxError, String(error));
    return { ok: false };
  }
}

test("a page split element by element is JSON exactly when JSON.parse says so, with the same events", () => {
  const page =
    '{"@odata.context":"c","value":[ {"id":"a","n":[1,2,{"x":null}]} , {"id":"b\\"]","s":"\\ud83d\\ude00"},5,"s,]",' +
    'true,[[[]]],{"城市":"東京","u":"Zoë 😀"} ],"@odata.nextLink":"https://graph.example/next?$skiptoken=a%5D"}';
  const variants = new Set<string>([page, '{"value":[]}', '{"value":[ ]}', "[1,2]", '{"value":[1],"value":[2,3]}']);
  // Every way of breaking it by one character: deleted, doubled, or replaced by a JSON-significant one.
  for (let i = 0; i < page.length; i++) {
    variants.add(page.slice(0, i) + page.slice(i + 1));
    variants.add(page.slice(0, i) + page[i] + page.slice(i));
    for (const c of [",", "]", "[", "}", "{", '"', ":", " ", "x", "#", "\\"]) {
      variants.add(page.slice(0, i) + c + page.slice(i + 1));
    }
  }
  let valid = 0;
  for (const text of variants) {
    if (!text.isWellFormed()) {
      continue; // half of 😀's surrogate pair: no UTF-8 body (what the reader gets) can hold it
    }
    let parsed: unknown;
    let isJson = true;
    try {
      parsed = JSON.parse(text);
    } catch {
      isJson = false;
    }
    const split = readSplit(text);
    assert.equal(split.ok, isJson, `JSON.parse ${isJson ? "accepts" : "refuses"} ${text}`);
    if (split.ok && parsed !== null && typeof parsed === "object") {
      valid++;
      const whole = parsed as { value?: unknown };
      if (Array.isArray(whole.value) && !Array.isArray(parsed)) {
        assert.deepEqual(split.events, whole.value, text);
        assert.deepEqual(split.envelope, { ...whole, value: [] }, text);
      }
    }
  }
  assert.ok(valid > 20, `${valid} valid variants`);
});
