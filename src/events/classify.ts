// Pure checks on the events of one page: which can be stored, which are set aside (and why).

import type { DirectoryAudit, SignIn } from "@microsoft/microsoft-graph-types";

import { elementOf, elementText, type JsonbBytes, NUL_REASON, type ScannedPage } from "./jsonb.ts";

/**
 * A sign-in or directory audit as Graph sent it; only `id` and the time field are relied on, the rest is kept
 * verbatim.
 */
type RawEvent = (Partial<SignIn> | Partial<DirectoryAudit>) & Record<string, unknown>;

export interface ValidEvent {
  id: string;
  /** The event's time (createdDateTime for sign-ins, activityDateTime for directory audits). */
  createdDateTime: string;
  raw: RawEvent;
}

export interface RejectedEvent {
  reason: string;
  rawText: string;
}

/** Parsed events classified: the storable ones with their object, the rejected ones with why. */
export interface ClassifiedParsedEvents {
  valid: ValidEvent[];
  rejected: RejectedEvent[];
  /** Events whose id appeared again later in the same page (the later copy is kept). */
  duplicates: number;
}

/** A storable event by its position in the page's `value` array (0-based), without the event itself. */
interface EventRef {
  index: number;
  id: string;
  createdDateTime: string;
}

export interface ClassifiedEvents {
  valid: EventRef[];
  rejected: RejectedEvent[];
  duplicates: number;
}

/**
 * A page's storable events as the page's own JSON (a Graph page object, or a bare array of events): every element
 * of its `value` array except those marked in `skip`. The store sends it as it is, so a page is held as its bytes
 * as received (JsonbBytes) while it waits for the previous page's transaction, not as parsed objects plus their
 * re-serialisation. (A string: JSON text built here or by a caller, sent as text.)
 */
export interface PageEvents {
  text: JsonbBytes | string;
  /** By position (0-based): true for the elements not to store (rejected events, earlier copies of repeated ids). */
  skip: readonly boolean[];
  /** How many events are stored (elements minus skipped). */
  count: number;
}

// ISO-8601 with an explicit zone; Graph sends UTC with 0..7 fractional digits.
const ISO_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:Z|[+-](\d{2}):(\d{2}))$/;
const MIN_YEAR = 2000;
const MAX_YEAR = 2199;
/** Largest zone offset accepted, in hours (real zones span -12..+14; PostgreSQL refuses beyond 15:59). */
const MAX_OFFSET_HOURS = 14;

/**
 * True when `text` is a timestamp PostgreSQL and JavaScript read identically: every field in range (no 30 February,
 * no hour 24, no second 60, no offset beyond ±14:59, which JavaScript would roll over or PostgreSQL refuse), year
 * 2000..2199.
 */
export function isGraphDateTime(text: unknown): text is string {
  if (typeof text !== "string") {
    return false;
  }
  const m = ISO_DATE_TIME.exec(text);
  if (!m) {
    return false;
  }
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const offsetOk = m[8] === undefined || (Number(m[8]) <= MAX_OFFSET_HOURS && Number(m[9]) <= 59);
  return (
    year >= MIN_YEAR &&
    year <= MAX_YEAR &&
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= daysInMonth &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 59 &&
    offsetOk
  );
}

/**
 * Splits a page's `value` array into storable and rejected events, de-duplicating ids within the page. `problem(i)`
 * is what PostgreSQL would refuse in element i (see jsonb.ts) and `rawText(i)` its text as received.
 */
export function classifyEvents(
  value: readonly unknown[],
  timeField = "createdDateTime",
  problem: (index: number) => string | undefined = () => undefined,
  rawText: (index: number) => string = (index) => textOf(value[index]),
): ClassifiedEvents {
  return classifyItems(value.length, (index) => value[index], timeField, problem, rawText);
}

/** classifyEvents over `length` events, each obtained when it is classified (and not held after). */
function classifyItems(
  length: number,
  itemAt: (index: number) => unknown,
  timeField: string,
  problem: (index: number) => string | undefined,
  rawText: (index: number) => string,
): ClassifiedEvents {
  const byId = new Map<string, EventRef>();
  const rejected: RejectedEvent[] = [];
  let duplicates = 0;
  for (let index = 0; index < length; index++) {
    const item = itemAt(index);
    const reason = problem(index) ?? rejectionReason(item, timeField);
    if (reason !== undefined) {
      rejected.push({ reason, rawText: rawText(index) });
      continue;
    }
    const raw = item as RawEvent;
    const id = raw.id as string;
    if (byId.has(id)) {
      duplicates++;
      byId.delete(id);
    }
    byId.set(id, { index, id, createdDateTime: raw[timeField] as string });
  }
  return { valid: [...byId.values()], rejected, duplicates };
}

/** classifyEvents for parsed events (tests, callers without the text), U+0000 included. */
export function classifyParsedEvents(value: readonly unknown[], timeField = "createdDateTime"): ClassifiedParsedEvents {
  const { valid, rejected, duplicates } = classifyEvents(value, timeField, (i) =>
    containsNul(value[i]) ? NUL_REASON : undefined,
  );
  return {
    valid: valid.map(({ index, id, createdDateTime }) => ({ id, createdDateTime, raw: value[index] as RawEvent })),
    rejected,
    duplicates,
  };
}

/**
 * A page's events (a page split by jsonb.ts's splitPage), classified (classifyEvents) element by element: each is
 * parsed when it is classified and dropped after, so a page never exists as one parsed whole. Throws SyntaxError
 * for an element that is not JSON (the page is then not JSON). What is sent for storage is normally the page's own
 * bytes and the positions to skip. When PostgreSQL would refuse something anywhere in the text (it parses the whole
 * text, skipped elements included), the valid events' own texts are sent instead, joined into an array. Rejected
 * events keep their exact text.
 */
export function pageEvents(
  scan: ScannedPage,
  timeField = "createdDateTime",
): ClassifiedEvents & { events: PageEvents } {
  const { elements, outside } = scan;
  const slice = (index: number): string => elementText(scan, index);
  const classified = classifyItems(
    elements.length,
    (i) => elementOf(scan, i),
    timeField,
    (i) => elements[i]?.problem,
    slice,
  );
  const { valid } = classified;
  if (outside !== undefined || elements.some((e) => e.problem !== undefined)) {
    const events = { text: `[${valid.map((e) => slice(e.index)).join(",")}]`, skip: [], count: valid.length };
    return { ...classified, events };
  }
  const skip: boolean[] = [];
  if (valid.length < elements.length) {
    skip.length = elements.length;
    skip.fill(true);
    for (const e of valid) {
      skip[e.index] = false;
    }
  }
  return { ...classified, events: { text: scan.bytes, skip, count: valid.length } };
}

/** JSON text of a parsed value for rejected_events; never throws (deep nesting, BigInt, cycles). */
function textOf(item: unknown): string {
  try {
    return JSON.stringify(item) ?? String(item);
  } catch (error) {
    return `(not serialisable: ${(error as Error).message})`;
  }
}

/** True when a string anywhere in `value` (keys included) holds U+0000. Iterative: no depth limit. */
function containsNul(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    if (typeof item === "string") {
      if (item.includes("\0")) {
        return true;
      }
    } else if (item !== null && typeof item === "object") {
      for (const [key, child] of Object.entries(item)) {
        if (key.includes("\0")) {
          return true;
        }
        stack.push(child);
      }
    }
  }
  return false;
}

function rejectionReason(item: unknown, timeField: string): string | undefined {
  if (item === null || typeof item !== "object" || Array.isArray(item)) {
    return "not a JSON object";
  }
  const { id, [timeField]: time } = item as Record<string, unknown>;
  if (typeof id !== "string" || id.trim() === "") {
    return "missing or empty id";
  }
  if (id.length > 200) {
    return "id longer than 200 characters";
  }
  if (!isGraphDateTime(time)) {
    return `missing or unparsable ${timeField}`;
  }
  return undefined;
}
