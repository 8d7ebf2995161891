// Pure planning of the windows one cycle reads. Time is passed in; nothing here does I/O.

import { floorSecond } from "../time.ts";

export interface WindowSettings {
  initialLookbackMs: number;
  overlapMs: number;
  settleMs: number;
  maxWindowMs: number;
  retentionMs: number;
}

export interface Window {
  from: Date;
  to: Date;
}

export interface Plan {
  windows: Window[];
  /** Set when the wanted start lies beyond Graph's retention: data in [lostFrom, lostTo) cannot be read any more. */
  lost?: { from: Date; to: Date };
}

/**
 * Windows for one cycle: from `checkpoint − overlap` (first run: `now − initialLookback`) to `now − settle`,
 * split into chunks of at most `maxWindow`, oldest first. Each chunk's end becomes the checkpoint once all of its
 * pages are stored. Bounds are whole seconds; both are inclusive (ge/le), so a boundary event is read twice at most.
 */
export function planWindows(checkpoint: Date | undefined, now: Date, settings: WindowSettings): Plan {
  const end = floorSecond(now.getTime() - settings.settleMs);
  const wanted = floorSecond(
    checkpoint === undefined ? now.getTime() - settings.initialLookbackMs : checkpoint.getTime() - settings.overlapMs,
  );
  // Graph only serves events inside its retention; keep a minute's margin so the query is not refused.
  const horizon = floorSecond(now.getTime() - settings.retentionMs) + 60_000;
  const start = Math.max(wanted, horizon);
  const plan: Plan = { windows: [] };
  if (checkpoint !== undefined && checkpoint.getTime() < horizon) {
    plan.lost = { from: new Date(checkpoint.getTime()), to: new Date(horizon) };
  }
  if (end <= start) {
    return plan;
  }
  for (let from = start; from < end;) {
    const to = Math.min(end, from + settings.maxWindowMs);
    plan.windows.push({ from: new Date(from), to: new Date(to) });
    // The next chunk starts at this one's end: the shared boundary second is read by both (ge/le), never by neither.
    from = to;
  }
  return plan;
}
