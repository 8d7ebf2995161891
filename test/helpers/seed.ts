// Sign-ins added to the simulator just for a test, spread evenly over the last `spanMinutes` (ending 5 minutes ago),
// so paging tests do not depend on the synthetic tenant's daily rhythm.

import type { Simulator } from "../../src/simulator/server.ts";
import { MINUTE } from "../../src/time.ts";

export function seedRecent(sim: Simulator, n: number, tag: string, spanMinutes = 290): void {
  const now = sim.now().getTime();
  sim.addEvents(
    Array.from({ length: n }, (_, i) => ({
      id: `${tag}-${i}`,
      createdDateTime: new Date(now - 5 * MINUTE - i * ((spanMinutes * MINUTE) / n)).toISOString(),
      userPrincipalName: `${tag}-${i}@example.com`,
      status: { errorCode: 0 },
    })),
  );
}
