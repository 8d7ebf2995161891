// Streams the events out of JSON text of any size without holding it: a sequence of top-level JSON values (one
// document, JSON lines, or concatenated documents), where each value is
//   - a page `{ …, "value": [ event, … ], … }` (Graph, Azure AD Graph, the `export --format graph-pages` lines),
//     or `{ "records": [ record, … ] }` (Azure Monitor diagnostic settings, e.g. a PT1H.json blob),
//   - a bare array `[ event, … ]`, or
//   - an object without a `value` array: one event (JSON lines).
// Only one event's text (plus a chunk) is in memory at a time. Each event's text is handed out unparsed, so the
// caller decides what an unparsable event means; the structure around events is checked here.

export type Container = "page" | "array" | "line";

export interface ScannedItem {
  text: string;
  container: Container;
  /** Character offset of the item's first character in the whole text. */
  offset: number;
}

export class JsonStructureError extends Error {
  override name = "JsonStructureError";
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} at character ${offset}`);
    this.offset = offset;
  }
}

type Top = "none" | "array" | "object" | "page";

const OPEN_OBJECT = 0x7b; // {
const CLOSE_OBJECT = 0x7d; // }
const OPEN_ARRAY = 0x5b; // [
const CLOSE_ARRAY = 0x5d; // ]
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const STRING_STOP = /["\\]/g;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

export class JsonEventScanner {
  private buf = "";
  /** Absolute offset of buf[0]. */
  private base = 0;
  private pos = 0;
  private stack: number[] = [];
  private inString = false;
  private escape = false;
  private top: Top = "none";
  /** Depth of the array whose elements are events (1: top-level array, 2: a page's value). */
  private arrayDepth = 0;
  /** Start (index in buf) of the item being captured, or -1. */
  private itemStart = -1;
  /** In a top-level object: the next string at depth 1 is a key. */
  private expectKey = false;
  private keyStart = -1;
  private lastKey: string | undefined;
  private pendingKey: string | undefined;
  private readonly emit: (item: ScannedItem) => void;
  /** How many top-level pages, `{"records": […]}` objects, arrays and single-event objects (lines) were seen. */
  readonly seen = { pages: 0, records: 0, arrays: 0, lines: 0 };

  constructor(emit: (item: ScannedItem) => void) {
    this.emit = emit;
  }

  /** Feeds the next piece of text; emits every event completed by it. Throws JsonStructureError. */
  push(chunk: string): void {
    this.buf += chunk;
    const buf = this.buf;
    const len = buf.length;
    let i = this.pos;
    while (i < len) {
      if (this.inString) {
        if (this.escape) {
          this.escape = false;
          i++;
          continue;
        }
        STRING_STOP.lastIndex = i;
        const m = STRING_STOP.exec(buf);
        if (m === null) {
          i = len;
          break;
        }
        i = m.index;
        if (buf.charCodeAt(i) === BACKSLASH) {
          this.escape = true;
          i++;
          continue;
        }
        this.inString = false;
        if (this.keyStart >= 0) {
          this.lastKey = safeParseString(buf.slice(this.keyStart, i + 1));
          this.keyStart = -1;
        }
        i++;
        continue;
      }
      const c = buf.charCodeAt(i);
      if (isSpace(c)) {
        i++;
        continue;
      }
      const depth = this.stack.length;
      const inEventArray = (this.top === "array" || this.top === "page") && depth === this.arrayDepth;
      if (inEventArray && this.itemStart < 0 && c !== COMMA && c !== CLOSE_ARRAY) {
        this.itemStart = i;
      }
      switch (c) {
        case QUOTE:
          if (depth === 0) {
            throw this.error("expected a JSON object or array, found a string", i);
          }
          this.inString = true;
          if (this.top === "object" && depth === 1 && this.expectKey) {
            this.keyStart = i;
          }
          break;
        case OPEN_OBJECT:
        case OPEN_ARRAY:
          if (depth === 0) {
            this.top = c === OPEN_OBJECT ? "object" : "array";
            if (c === OPEN_OBJECT) {
              this.seen.lines++;
              this.itemStart = i;
              this.expectKey = true;
              this.pendingKey = undefined;
            } else {
              this.seen.arrays++;
              this.arrayDepth = 1;
              this.itemStart = -1;
            }
          } else if (
            this.top === "object" &&
            depth === 1 &&
            c === OPEN_ARRAY &&
            (this.pendingKey === "value" || this.pendingKey === "records")
          ) {
            // A page (Graph's `value`, Azure Monitor's `records`): from here on, the elements of this array are the
            // events; the page's other members are not kept.
            this.top = "page";
            this.seen.lines--;
            if (this.pendingKey === "records") {
              this.seen.records++;
            } else {
              this.seen.pages++;
            }
            this.arrayDepth = 2;
            this.itemStart = -1;
          }
          this.stack.push(c);
          if (depth === 1 && this.top === "object") {
            this.pendingKey = undefined;
          }
          break;
        case CLOSE_OBJECT:
        case CLOSE_ARRAY: {
          const open = this.stack.pop();
          if (open === undefined || (open === OPEN_OBJECT) !== (c === CLOSE_OBJECT)) {
            throw this.error(`unexpected '${String.fromCharCode(c)}'`, i);
          }
          if (inEventArray && c === CLOSE_ARRAY) {
            this.finishElement(i);
          }
          if (this.stack.length === 0) {
            if (this.top === "object") {
              this.emitItem(this.itemStart, i + 1, "line");
            }
            this.top = "none";
            this.itemStart = -1;
            this.arrayDepth = 0;
          }
          break;
        }
        case COMMA:
          if (depth === 0) {
            throw this.error("unexpected ','", i);
          }
          if (inEventArray) {
            this.finishElement(i);
          } else if ((this.top === "object" || this.top === "page") && depth === 1) {
            this.expectKey = true;
          }
          break;
        case COLON:
          if ((this.top === "object" || this.top === "page") && depth === 1) {
            this.expectKey = false;
            this.pendingKey = this.lastKey;
            this.lastKey = undefined;
          }
          break;
        default:
          this.scalar(buf, i);
      }
      i++;
    }
    this.pos = i;
    this.compact();
  }

  /** A number or literal begins at `i`. */
  private scalar(buf: string, i: number): void {
    const depth = this.stack.length;
    if (depth === 0) {
      throw this.error(`expected a JSON object or array, found ${JSON.stringify(buf.slice(i, i + 20))}`, i);
    }
    if (this.top === "object" && depth === 1 && !this.expectKey) {
      this.pendingKey = undefined;
    }
  }

  /** Call at the end of the text: throws when a value is unfinished (a truncated file). */
  end(): void {
    if (this.stack.length > 0 || this.inString) {
      throw this.error("unexpected end of text (truncated?)", this.buf.length);
    }
  }

  private finishElement(end: number): void {
    if (this.itemStart >= 0) {
      this.emitItem(this.itemStart, end, this.top === "page" ? "page" : "array");
    } else if (this.buf.charCodeAt(end) === COMMA) {
      throw this.error("unexpected ','", end);
    }
    this.itemStart = -1;
  }

  private emitItem(start: number, end: number, container: Container): void {
    const text = this.buf.slice(start, end).trimEnd();
    this.emit({ text, container, offset: this.base + start });
  }

  /** Drops what no capture needs any more, so memory stays at one item plus one chunk. */
  private compact(): void {
    let keep = this.pos;
    if (this.itemStart >= 0) {
      keep = Math.min(keep, this.itemStart);
    }
    if (this.keyStart >= 0) {
      keep = Math.min(keep, this.keyStart);
    }
    if (keep === 0) {
      return;
    }
    this.buf = this.buf.slice(keep);
    this.base += keep;
    this.pos -= keep;
    if (this.itemStart >= 0) {
      this.itemStart -= keep;
    }
    if (this.keyStart >= 0) {
      this.keyStart -= keep;
    }
  }

  private error(message: string, index: number): JsonStructureError {
    return new JsonStructureError(message, this.base + index);
  }
}

function safeParseString(text: string): string | undefined {
  try {
    return JSON.parse(text) as string;
  } catch {
    return undefined;
  }
}
