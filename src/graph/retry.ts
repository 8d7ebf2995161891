// Pure retry arithmetic: Retry-After parsing and capped exponential backoff with jitter.

/** Milliseconds to wait from a Retry-After header (delta-seconds or HTTP-date); undefined when absent or garbage. */
export function parseRetryAfter(header: string | undefined, now: Date): number | undefined {
  if (header === undefined) {
    return undefined;
  }
  const text = header.trim();
  if (/^\d+$/.test(text)) {
    return Number(text) * 1000;
  }
  if (/^\d+\.\d+$/.test(text)) {
    return Math.ceil(Number(text) * 1000);
  }
  // An HTTP-date must name a weekday or month; Date.parse alone accepts things like "-5" or "1".
  if (!/[a-z]{3}/i.test(text)) {
    return undefined;
  }
  const at = Date.parse(text);
  if (!Number.isFinite(at)) {
    return undefined;
  }
  return Math.max(0, at - now.getTime());
}

/** Clamps a server-requested wait into [0, max]. */
export function clampRetryAfter(ms: number, maxMs: number): number {
  return Math.min(Math.max(ms, 0), maxMs);
}

/**
 * Backoff before retry number `attempt` (1-based): base·2^(attempt−1) capped at `capMs`, with "equal jitter"
 * (half fixed, half random) so the first retry never comes sooner than half the base, as Microsoft asks.
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  capMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
