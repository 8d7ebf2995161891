// Durations and the clock. Time is always passed in, never read from a global in planning code.

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** `ms` rounded down to a whole second (Graph's filters and the windows' bounds are whole seconds). */
export function floorSecond(ms: number): number {
  return Math.floor(ms / SECOND) * SECOND;
}

/** `ms` rounded up to a whole second. */
export function ceilSecond(ms: number): number {
  return Math.ceil(ms / SECOND) * SECOND;
}

/** Something that tells the time; tests pass a fixed or moving fake. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

const UNIT_MS: Record<string, number> = { ms: 1, s: SECOND, m: MINUTE, h: HOUR, d: DAY };
const DURATION = /^(\d+)(ms|s|m|h|d)$/;

/** Parses `45s`, `15m`, `2h`, `7d` (and `250ms`) into milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) {
    return undefined;
  }
  const [, amount, unit] = match;
  return Number(amount) * (UNIT_MS[unit as string] as number);
}

/** Formats milliseconds the way configuration is written (`90m` → `1h30m`). */
export function formatDuration(ms: number): string {
  if (ms === 0) {
    return "0s";
  }
  const parts: string[] = [];
  let rest = Math.abs(ms);
  for (const [unit, size] of [
    ["d", DAY],
    ["h", HOUR],
    ["m", MINUTE],
    ["s", SECOND],
    ["ms", 1],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return (ms < 0 ? "-" : "") + parts.join("");
}

/** The longest delay a Node timer takes: anything above fires after 1 ms instead (TimeoutOverflowWarning). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay a timer can take: NaN and negatives become 0, anything above MAX_TIMER_MS becomes MAX_TIMER_MS. */
export function timerDelay(ms: number): number {
  return Number.isNaN(ms) || ms <= 0 ? 0 : Math.min(ms, MAX_TIMER_MS);
}

/**
 * Resolves after `ms`, or rejects with the signal's reason when it aborts first. Safe for any delay, whatever its
 * source: NaN or negative waits 0, and a wait longer than a timer can hold (about 24.8 days) is slept in steps
 * instead of overflowing into a 1 ms timer (a busy loop for every caller that waits in a loop).
 */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  let rest = Number.isNaN(ms) ? 0 : ms;
  do {
    const step = timerDelay(rest);
    await sleepStep(step, signal);
    rest -= step;
  } while (rest > 0);
}

function sleepStep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
