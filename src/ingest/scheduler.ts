// Runs cycles on a cron schedule (UTC), never two at once: a tick that finds a cycle still running is skipped.

import cron from "node-cron";

import type { Logger } from "../log.ts";

export interface Schedule {
  /** Stops future ticks and waits for a running cycle to finish. Idempotent. */
  stop(): Promise<void>;
}

export function startSchedule(expression: string, cycle: () => Promise<void>, log: Logger): Schedule {
  let running: Promise<void> | undefined;
  let stopped = false;
  const tick = () => {
    if (stopped) {
      return;
    }
    if (running) {
      log.info("previous cycle still running; skipping this tick");
      return;
    }
    running = cycle().finally(() => {
      running = undefined;
    });
  };
  // No `noOverlap`: node-cron can only see overlap through a promise the callback returns, and `tick` returns at
  // once (the guard above is what keeps cycles from overlapping).
  const task = cron.schedule(expression, tick, { timezone: "UTC", name: "signin-ingest" });
  tick(); // one cycle at once, then one per tick
  let stopping: Promise<void> | undefined;
  return {
    stop: () =>
      (stopping ??= (async () => {
        stopped = true;
        await task.stop();
        await task.destroy();
        await running;
      })()),
  };
}

/** The longest gap between the next few runs of a cron expression (UTC), e.g. 300000 for every five minutes. */
export function scheduleIntervalMs(expression: string): number {
  const task = cron.createTask(expression, () => undefined, { timezone: "UTC" });
  try {
    const runs = task.getNextRuns(4).map((d) => d.getTime());
    let longest = 0;
    for (let i = 1; i < runs.length; i++) {
      longest = Math.max(longest, (runs[i] ?? 0) - (runs[i - 1] ?? 0));
    }
    return longest;
  } finally {
    void task.destroy();
  }
}
