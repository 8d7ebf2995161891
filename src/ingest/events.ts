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

/** Splits a page's `value` array into storable and rejected events, de-duplicating ids within the page. */
export function sortEvents(value: readonly unknown[], timeField = "createdDateTime"): SortedEvents {
  const byId = new Map<string, ValidEvent>();
  const rejected: RejectedEvent[] = [];
  let duplicates = 0;
  for (const item of value) {
    const reason = rejectionReason(item, timeField);
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
    byId.set(id, { id, createdDateTime: raw[timeField] as string, raw });
  }
  return { valid: [...byId.values()], rejected, duplicates };
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
