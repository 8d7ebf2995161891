// What PostgreSQL's jsonb input refuses in a JSON text that JSON.parse accepted, found by one linear scan of the
// text: the shared definition of "PostgreSQL can store this" for the reader and `import`. Pure; no I/O.
//
// JSON.parse and PostgreSQL disagree on four things (each reproduced against PostgreSQL 15 and 18):
//   - `\u0000` anywhere (22P05 "unsupported Unicode escape sequence");
//   - an unpaired UTF-16 surrogate escape such as `\ud800`, in a key or a value (22P02 "invalid input syntax");
//   - a number outside the numeric type: more than 16383 digits after the point once the exponent is applied,
//     a first significant digit at 10^131072 or beyond, or an exponent beyond ±1073741823 (22003 "value overflows
//     numeric format"), where JSON.parse gives Infinity or 0;
//   - nesting deep enough to exhaust PostgreSQL's stack (54001, ~15,000 levels at max_stack_depth 2MB, fewer on a
//     server with a smaller setting): anything deeper than MAX_JSON_DEPTH is refused here, far below that.
// The scan also finds the elements of a page's `value` array (their byte spans), so a rejected event is kept as the
// exact text Graph sent (JSON.stringify would turn 1e999999 into null, and throws on ~5,000 levels of nesting).
//
// The scan reads UTF-8 bytes held as PostgreSQL's jsonb binary input takes them (JsonbBytes): a page stays in that
// form from the wire to the Bind message, so it costs its bytes in memory whatever the script of its names (a
// JavaScript string holding any character beyond U+00FF takes two bytes a character: a page of names in Japanese,
// Cyrillic or Greek held as text cost twice its size) and it is sent to PostgreSQL without being encoded again.
// Every structural character of JSON is ASCII and no byte of a multi-byte UTF-8 sequence is below 0x80, so the
// scan follows the bytes exactly as it would the characters.

/**
 * A JSON text in the jsonb binary format PostgreSQL's jsonb_recv reads: the format version (1) in byte 0, then the
 * text in UTF-8. Given to node-postgres as a Buffer parameter, it is sent in binary format as it is.
 */
export type JsonbBytes = Buffer;

/** The jsonb binary format's version byte (PostgreSQL's jsonb_recv accepts 1 only). */
export const JSONB_BINARY_VERSION = 1;

/** `text` as JsonbBytes. */
export function jsonbBytes(text: string): JsonbBytes {
  const bytes = Buffer.allocUnsafe(1 + Buffer.byteLength(text));
  bytes[0] = JSONB_BINARY_VERSION;
  bytes.write(text, 1);
  return bytes;
}

/**
 * A JSON array of `texts` (each one JSON value) as JsonbBytes, written straight into one buffer: no joined string
 * and no copy by node-postgres (sent in place: src/store/page-query.ts), so a batch is held once.
 */
export function jsonbArray(texts: readonly string[]): JsonbBytes {
  let size = 2 + Math.max(0, texts.length - 1);
  for (const text of texts) {
    size += Buffer.byteLength(text);
  }
  const bytes = Buffer.allocUnsafe(1 + size);
  bytes[0] = JSONB_BINARY_VERSION;
  bytes[1] = 0x5b; // [
  let at = 2;
  for (const [i, text] of texts.entries()) {
    if (i > 0) {
      bytes[at++] = 0x2c; // ,
    }
    at += bytes.write(text, at);
  }
  bytes[at] = 0x5d; // ]
  return bytes;
}

/** The text of `bytes` (JsonbBytes) from byte `start` (default: the whole JSON) to `end`. */
export function utf8Text(bytes: JsonbBytes, start = 1, end = bytes.length): string {
  return bytes.toString("utf8", start, end);
}

/** Nesting levels allowed within one event (a Graph event has fewer than 10). */
export const MAX_JSON_DEPTH = 200;

const NUMERIC_MAX_DSCALE = 16383;
const NUMERIC_MAX_WEIGHT10 = 131071;
// An exponent of ±1073741823 (INT_MAX / 2) itself is refused by PostgreSQL 15 ("value overflows numeric format",
// whatever the digits: 0e1073741823 too) and accepted by 18 for a zero; refused here for both.
const NUMERIC_MAX_EXPONENT = 1073741823;

export const NUL_REASON = "holds a U+0000 (NUL) character, which PostgreSQL cannot store";
const SURROGATE_REASON =
  "holds an unpaired UTF-16 surrogate escape (such as \\ud800), which PostgreSQL's jsonb refuses";
const DEPTH_REASON = `nested deeper than ${MAX_JSON_DEPTH} levels (PostgreSQL's parser would run out of stack)`;

function numberReason(literal: string): string {
  const shown =
    literal.length > 40 ? `${literal.slice(0, 20)}…${literal.slice(-12)} (${literal.length} characters)` : literal;
  return `holds the number ${shown}, outside the range of PostgreSQL's numeric type`;
}

/** A span of the scanned bytes: one element of the event array, and what PostgreSQL would refuse in it. */
interface ElementSpan {
  start: number;
  end: number;
  problem: string | undefined;
}

export interface ScannedPage {
  /** What was scanned (the spans index it). */
  bytes: JsonbBytes;
  /** The elements of the page's `value` array (of the top-level array for a bare array), in order. */
  elements: ElementSpan[];
  /** What PostgreSQL would refuse outside those elements (e.g. in @odata.nextLink), if anything. */
  outside: string | undefined;
  /** The span of that array, `[` to `]` inclusive (undefined: the text has none). */
  array?: { start: number; end: number } | undefined;
}

/** The problem PostgreSQL would find in this JSON text (one value, e.g. one event), or undefined. */
export function jsonbProblem(text: string): string | undefined {
  const scan = scanJson(jsonbBytes(text), "value");
  return scan.elements[0]?.problem ?? scan.outside;
}

/**
 * Scans a page (`{ …, "value": [ … ] }`, or a bare array `[ … ]`) that JSON.parse accepted: the text span of each
 * element of its event array and what PostgreSQL would refuse in each. With duplicate "value" keys the last one
 * counts, as for JSON.parse and PostgreSQL.
 */
export function scanPage(page: JsonbBytes | string): ScannedPage {
  return scanJson(typeof page === "string" ? jsonbBytes(page) : page, "page");
}

/**
 * A page's text checked to be JSON and split without parsing it whole: the envelope (the page object with its
 * event array emptied: @odata.nextLink, @odata.context; parsed, it is small) and the scan of its elements. A page
 * parsed whole costs ~3 times its text in objects that live until the next full collection (8 MB of text: ~25 MB);
 * parsed element by element (elementOf), each event's objects die young. The text is JSON exactly when the envelope
 * parses, only whitespace and single commas lie between the elements, and every element parses: elementOf throws
 * SyntaxError for one that does not, so a caller that reads every element has checked the whole text. Throws
 * SyntaxError when the text is not JSON.
 */
export function splitPage(page: JsonbBytes | string): { envelope: unknown; scan: ScannedPage } {
  const scan = scanPage(page);
  const { array, elements, bytes } = scan;
  if (array === undefined) {
    return { envelope: JSON.parse(utf8Text(bytes)) as unknown, scan };
  }
  let at = array.start + 1;
  for (const [index, span] of elements.entries()) {
    if (!onlySeparator(bytes, at, span.start, index > 0)) {
      throw new SyntaxError(`unexpected text before element ${index} of the event array (byte ${at - 1})`);
    }
    at = span.end;
  }
  if (!onlySeparator(bytes, at, array.end - 1, false)) {
    throw new SyntaxError(`unexpected text at the end of the event array (byte ${at - 1})`);
  }
  const envelope = JSON.parse(utf8Text(bytes, 1, array.start) + "[]" + utf8Text(bytes, array.end)) as unknown;
  return { envelope, scan };
}

/** The text of element `index` of a scanned page, as received. */
export function elementText(scan: ScannedPage, index: number): string {
  const span = scan.elements[index] as ElementSpan;
  return utf8Text(scan.bytes, span.start, span.end);
}

/** Element `index` of a page split by splitPage, parsed; throws SyntaxError when it is not JSON. */
export function elementOf(scan: ScannedPage, index: number): unknown {
  return JSON.parse(elementText(scan, index)) as unknown;
}

/** True when bytes[from, to) is JSON whitespace around exactly one comma (`comma`), or whitespace only. */
function onlySeparator(bytes: Uint8Array, from: number, to: number, comma: boolean): boolean {
  let commas = 0;
  for (let i = from; i < to; i++) {
    const c = bytes[i];
    if (c === COMMA) {
      commas++;
    } else if (!(c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09)) {
      return false;
    }
  }
  return commas === (comma ? 1 : 0);
}

/** Why PostgreSQL's numeric type cannot hold this JSON number literal, or undefined. */
export function numericProblem(literal: string): string | undefined {
  const m = /^-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?)(\d+))?$/.exec(literal);
  if (!m) {
    return undefined;
  }
  const [, int = "", frac = "", sign, expDigits = "0"] = m;
  const digits = expDigits.replace(/^0+/, "");
  if (digits.length > 10) {
    return numberReason(literal);
  }
  const exponent = (sign === "-" ? -1 : 1) * Number(digits || "0");
  if (Math.abs(exponent) >= NUMERIC_MAX_EXPONENT || frac.length - exponent > NUMERIC_MAX_DSCALE) {
    return numberReason(literal);
  }
  const first = (int + frac).search(/[1-9]/);
  if (first >= 0 && int.length - 1 - first + exponent > NUMERIC_MAX_WEIGHT10) {
    return numberReason(literal);
  }
  return undefined;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const LOWER_U = 0x75;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const LOWER_A = 0x61;
const LOWER_Z = 0x7a;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const DOT = 0x2e;
const MINUS = 0x2d;
const PLUS = 0x2b;

/** The value of the four hex digits at `at`, or -1. */
function hex4(bytes: Uint8Array, at: number): number {
  let value = 0;
  for (let k = at; k < at + 4; k++) {
    const d = bytes[k] ?? -1;
    const digit =
      d >= DIGIT_0 && d <= DIGIT_9
        ? d - DIGIT_0
        : d >= 0x61 && d <= 0x66
          ? d - 0x57
          : d >= 0x41 && d <= 0x46
            ? d - 0x37
            : -1;
    if (digit < 0) {
      return -1;
    }
    value = value * 16 + digit;
  }
  return value;
}

/** Records `problem` on the element being scanned, or else as the text's problem outside elements. */
function note(current: ElementSpan | undefined, outside: string | undefined, problem: string): string | undefined {
  if (current) {
    current.problem ??= problem;
    return outside;
  }
  return outside ?? problem;
}

/**
 * The scanner. `mode` "page": elements are those of the top-level object's "value" array (or of a top-level
 * array); "value": the whole text is one element. The text must be valid JSON (JSON.parse accepted it): structure
 * is followed, not checked. One pass over the bytes from byte 1 (JsonbBytes), written as one loop without closures
 * (it runs over every page: less time than JSON.parse takes on the same text).
 */
function scanJson(bytes: JsonbBytes, mode: "page" | "value"): ScannedPage {
  const page = mode === "page";
  let elements: ElementSpan[] = [];
  let outside: string | undefined;
  let array: { start: number; end: number } | undefined;
  let current: ElementSpan | undefined;
  // Depth of the array whose direct children are the elements (-1: none yet; 0: the whole text is the element).
  let elementDepth = page ? -1 : 0;
  let depth = 0;
  let expectKey = false;
  let lastKey: string | undefined;
  let pendingValueKey = false;
  const len = bytes.length;
  let i = 1;
  while (i < len) {
    const c = bytes[i] as number;
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
      i++;
      continue;
    }
    if (c === COMMA) {
      if (page && depth === 1 && elementDepth !== 1) {
        expectKey = true;
      }
      i++;
      continue;
    }
    if (c === COLON) {
      if (page && depth === 1) {
        pendingValueKey = lastKey === "value";
        lastKey = undefined;
      }
      i++;
      continue;
    }
    if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
      if (depth === elementDepth && current !== undefined) {
        current.end = i + 1;
        elements.push(current);
        current = undefined;
      } else if (page && depth === 1 && elementDepth === 2 && c === CLOSE_ARRAY) {
        elementDepth = -1;
        if (array) {
          array.end = i + 1;
        }
      } else if (page && depth === 0 && elementDepth === 1 && c === CLOSE_ARRAY && array) {
        array.end = i + 1;
      }
      i++;
      continue;
    }
    const start = i;
    if (current === undefined && depth === elementDepth) {
      current = { start, end: start, problem: undefined };
    }
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (page && depth === 0) {
        if (c === OPEN_ARRAY) {
          elementDepth = 1;
          array = { start: i, end: len };
        } else {
          expectKey = true;
        }
      } else if (page && depth === 1 && pendingValueKey && c === OPEN_ARRAY && elementDepth !== 1) {
        // The page's event array (a later duplicate "value" replaces an earlier one, as in JSON.parse).
        for (const e of elements) {
          outside ??= e.problem;
        }
        elements = [];
        elementDepth = 2;
        array = { start: i, end: len };
      }
      pendingValueKey = false;
      depth++;
      if (depth - Math.max(elementDepth, 0) > MAX_JSON_DEPTH + (current ? 0 : 2)) {
        outside = note(current, outside, DEPTH_REASON);
      }
      i++;
      continue;
    }
    if (c === QUOTE) {
      i++;
      let escaped = false;
      for (;;) {
        // To the closing quote or the next escape: each byte is looked at once, however the escapes fall.
        let d = 0;
        while (i < len && (d = bytes[i] as number) !== QUOTE && d !== BACKSLASH) {
          i++;
        }
        if (i >= len || d === QUOTE) {
          i = Math.min(i + 1, len);
          break;
        }
        escaped = true;
        if (bytes[i + 1] !== LOWER_U) {
          i += 2;
          continue;
        }
        const unit = hex4(bytes, i + 2);
        i += 6;
        if (unit === 0) {
          outside = note(current, outside, NUL_REASON);
        } else if (unit >= 0xd800 && unit <= 0xdbff) {
          const low = bytes[i] === BACKSLASH && bytes[i + 1] === LOWER_U ? hex4(bytes, i + 2) : -1;
          if (low >= 0xdc00 && low <= 0xdfff) {
            i += 6;
          } else {
            outside = note(current, outside, SURROGATE_REASON);
          }
        } else if (unit >= 0xdc00 && unit <= 0xdfff) {
          outside = note(current, outside, SURROGATE_REASON);
        }
      }
      if (page && depth === 1 && expectKey) {
        const key = utf8Text(bytes, start, i);
        lastKey = escaped ? (JSON.parse(key) as string) : key.slice(1, -1);
        expectKey = false;
      }
    } else if (c === MINUS || (c >= DIGIT_0 && c <= DIGIT_9)) {
      let exponent = false;
      i++;
      for (; i < len; i++) {
        const d = bytes[i] as number;
        if (d === LOWER_E || d === UPPER_E) {
          exponent = true;
        } else if (!((d >= DIGIT_0 && d <= DIGIT_9) || d === DOT || d === MINUS || d === PLUS)) {
          break;
        }
      }
      // Only a literal with an exponent, or longer than the numeric type's scale, can be out of range.
      const problem =
        exponent || i - start > NUMERIC_MAX_DSCALE ? numericProblem(utf8Text(bytes, start, i)) : undefined;
      if (problem) {
        outside = note(current, outside, problem);
      }
    } else {
      // true, false or null. The first character is passed whatever it is: splitPage scans text JSON.parse has not
      // checked, and a stray character must not stop the scan from advancing.
      i++;
      while (i < len && (bytes[i] as number) >= LOWER_A && (bytes[i] as number) <= LOWER_Z) {
        i++;
      }
    }
    // A string, number or literal: a scalar element ends here; a member value at depth 1 is not the event array.
    if (page && depth === 1 && c !== QUOTE) {
      pendingValueKey = false;
    }
    if (depth === elementDepth && current !== undefined) {
      current.end = i;
      elements.push(current);
      current = undefined;
    }
  }
  return { bytes, elements, outside, array };
}
