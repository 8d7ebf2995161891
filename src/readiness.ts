// Readiness of a `run` replica, per configured (tenant, stream), from the outcomes of its ticks. Pure: time is
// passed in.
//
// A stream is fine when
// - another live replica holds its lease (standby), as seen by a tick within the allowed age, or
// - a cycle of this replica moved at least one window (a successful cycle with windows) within the allowed age
//   (READY_CYCLE_MULTIPLE schedule intervals), or
// - it has been this replica's for less than that age (a grace after start, or after taking the lease over).
// Otherwise it is stalled: every cycle failed, cycles succeed without reading any window (e.g. Graph's clock far
// in the past), or no tick reached it (ticks failing before the cycles). One stalled stream makes the replica
// not ready.

export interface StreamKey {
  tenantId: string;
  stream: string;
}

type StreamState = "ok" | "standby" | "starting" | "stalled";

export interface StreamReadiness extends StreamKey {
  state: StreamState;
  /** The last cycle of this replica that moved a window. */
  lastProgressAt: string | null;
  lastOutcome: "success" | "failure" | "standby" | "skipped" | null;
  lastError: string | null;
  /** The replica holding the lease, when standby. */
  holder: string | null;
}

/** One tick's outcome for one stream, as the tracker needs it. */
export interface ObservedOutcome extends StreamKey {
  /** A successful cycle, with how many windows it read. */
  windows?: number;
  error?: Error;
  /** Not polled here; `holder` when another live replica holds the lease. */
  standby?: boolean;
  holder?: string;
}

interface State {
  since: Date;
  lastProgressAt: Date | undefined;
  lastOutcome: StreamReadiness["lastOutcome"];
  lastError: string | null;
  holder: string | null;
  observedAt: Date | undefined;
}

const keyOf = (k: StreamKey) => `${k.tenantId}/${k.stream}`;

export class ReadinessTracker {
  readonly maxAgeMs: number;
  readonly #states = new Map<string, { key: StreamKey; state: State }>();

  constructor(streams: readonly StreamKey[], options: { maxAgeMs: number; startedAt: Date }) {
    this.maxAgeMs = options.maxAgeMs;
    for (const key of streams) {
      this.#states.set(keyOf(key), {
        key: { tenantId: key.tenantId, stream: key.stream },
        state: {
          since: options.startedAt,
          lastProgressAt: undefined,
          lastOutcome: null,
          lastError: null,
          holder: null,
          observedAt: undefined,
        },
      });
    }
  }

  observe(outcomes: readonly ObservedOutcome[], at: Date): void {
    for (const outcome of outcomes) {
      const entry = this.#states.get(keyOf(outcome));
      if (!entry) {
        continue;
      }
      const s = entry.state;
      const wasStandby = s.lastOutcome === "standby";
      s.observedAt = at;
      if (outcome.standby && outcome.holder !== undefined) {
        s.lastOutcome = "standby";
        s.holder = outcome.holder;
        s.lastError = null;
        s.since = at;
        continue;
      }
      if (wasStandby) {
        // Ours from now on: a fresh grace to show progress.
        s.since = at;
      }
      s.holder = null;
      if (outcome.standby) {
        s.lastOutcome = "skipped";
        s.lastError = "free, but beyond this replica's fair share";
      } else if (outcome.error) {
        s.lastOutcome = "failure";
        s.lastError = outcome.error.message;
      } else if ((outcome.windows ?? 0) > 0) {
        s.lastOutcome = "success";
        s.lastError = null;
        s.lastProgressAt = at;
      } else {
        s.lastOutcome = "success";
        s.lastError = "the cycle had no window to read (is Graph's clock far behind?)";
      }
    }
  }

  report(now: Date): { ready: boolean; streams: StreamReadiness[] } {
    const streams = [...this.#states.values()].map(({ key, state: s }): StreamReadiness => {
      const fresh = (d: Date | undefined) => d !== undefined && now.getTime() - d.getTime() <= this.maxAgeMs;
      const state: StreamState =
        s.lastOutcome === "standby" && fresh(s.observedAt)
          ? "standby"
          : fresh(s.lastProgressAt)
            ? "ok"
            : fresh(s.since)
              ? "starting"
              : "stalled";
      return {
        ...key,
        state,
        lastProgressAt: s.lastProgressAt?.toISOString() ?? null,
        lastOutcome: s.lastOutcome,
        lastError: s.lastError,
        holder: s.holder,
      };
    });
    return { ready: streams.every((s) => s.state !== "stalled"), streams };
  }
}
