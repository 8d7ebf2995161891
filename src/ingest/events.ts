// Pure checks on the events of one page: which can be stored, which are set aside (and why).

import type { SignIn } from "@microsoft/microsoft-graph-types";

/** An event as Graph sent it; only `id` and `createdDateTime` are relied on, the rest is kept verbatim. */
export type RawSignIn = Partial<SignIn> & Record<string, unknown>;

export interface ValidEvent {
  id: string;
  /** The event's time (createdDateTime for sign-ins, activityDateTime for directory audits). */
  createdDateTime: string;
  raw: RawSignIn;
}

export interface RejectedEvent {
  reason: string;
  rawText: string;
}

export interface SortedEvents {
  valid: ValidEvent[];
  rejected: RejectedEvent[];
  /** Events whose id appeared again later in the same page (the later copy is kept). */
  duplicates: number;
}

/** A storable event by its position in the page's `value` array (0-based), without the event itself. */
export interface EventRef {
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
 * A page's storable events as the page's own JSON text (a Graph page object, or a bare array of events): every
 * element of its `value` array except those at `skip`. The store sends this text as it is, so a page is held as one
 * string while it waits for the previous page's transaction, not as parsed objects plus their re-serialisation.
 */
export interface PageEvents {
  text: string;
  /** Positions (1-based) of the elements not to store: rejected events and the earlier copies of repeated ids. */
  skip: number[];
  /** How many events are stored (elements minus skipped). */
  count: number;
}

// ISO-8601 with an explicit zone; Graph sends UTC with 0..7 fractional digits.
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const MIN_TIME = Date.UTC(2000, 0, 1);
const MAX_TIME = Date.UTC(2200, 0, 1);

/** True when `text` is a timestamp PostgreSQL and JavaScript read identically. */
export function isGraphDateTime(text: unknown): text is string {
  if (typeof text !== "string" || !ISO_DATE_TIME.test(text)) {
    return false;
  }
  const ms = Date.parse(text.replace(/(\.\d{3})\d+/, "$1"));
  return Number.isFinite(ms) && ms >= MIN_TIME && ms < MAX_TIME;
}

/**
 * Splits a page's `value` array into storable and rejected events, de-duplicating ids within the page. With
 * `checkNul`, an event holding U+0000 anywhere (PostgreSQL's text and jsonb refuse it) is rejected too; pageEvents
 * asks for the check only when the page's text contains the escape.
 */
export function classifyEvents(
  value: readonly unknown[],
  timeField = "createdDateTime",
  checkNul = false,
): ClassifiedEvents {
  const byId = new Map<string, EventRef>();
  const rejected: RejectedEvent[] = [];
  let duplicates = 0;
  for (const [index, item] of value.entries()) {
    const reason = rejectionReason(item, timeField) ?? (checkNul && containsNul(item) ? NUL_REASON : undefined);
    if (reason !== undefined) {
      rejected.push({ reason, rawText: JSON.stringify(item) ?? String(item) });
      continue;
    }
    const raw = item as RawSignIn;
    const id = raw.id as string;
    if (byId.has(id)) {
      duplicates++;
      byId.delete(id);
    }
    byId.set(id, { index, id, createdDateTime: raw[timeField] as string });
  }
  return { valid: [...byId.values()], rejected, duplicates };
}

/** classifyEvents (NULs included) with each storable event itself. */
export function sortEvents(value: readonly unknown[], timeField = "createdDateTime"): SortedEvents {
  const { valid, rejected, duplicates } = classifyEvents(value, timeField, true);
  return {
    valid: valid.map(({ index, id, createdDateTime }) => ({ id, createdDateTime, raw: value[index] as RawSignIn })),
    rejected,
    duplicates,
  };
}

/**
 * A page's events, classified (classifyEvents), with what to send for storage: the page's own JSON text and the
 * positions to skip. A page whose text holds a NUL escape cannot be sent as it is (PostgreSQL would refuse the whole
 * text, rejected events included): its events are then also checked for U+0000, and the valid ones serialised on
 * their own. The text is scanned for the escape once.
 */
export function pageEvents(
  text: string,
  value: readonly unknown[],
  timeField = "createdDateTime",
): ClassifiedEvents & { events: PageEvents } {
  const nul = text.includes("\\u0000");
  const classified = classifyEvents(value, timeField, nul);
  const { valid } = classified;
  if (nul) {
    const events = { text: JSON.stringify(valid.map((e) => value[e.index])), skip: [], count: valid.length };
    return { ...classified, events };
  }
  const length = value.length;
  const skip: number[] = [];
  if (valid.length < length) {
    const kept = new Set(valid.map((e) => e.index));
    for (let i = 0; i < length; i++) {
      if (!kept.has(i)) {
        skip.push(i + 1);
      }
    }
  }
  return { ...classified, events: { text, skip, count: valid.length } };
}

const NUL_REASON = "holds a U+0000 (NUL) character, which PostgreSQL cannot store";

function containsNul(value: unknown): boolean {
  if (typeof value === "string") {
    return value.includes("\0");
  }
  if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      if (key.includes("\0") || containsNul(item)) {
        return true;
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
