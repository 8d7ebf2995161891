// The simulator's public types, apart from its server (src/simulator/server.ts) so that the admin endpoints, which
// the server routes to, need not import the server.
import type { FaultRule } from "./faults.ts";
import type { ThrottleRule } from "./throttle.ts";

export type SimulatorMode = "normal" | "no-licence" | "no-permission";
export interface SimulatorOptions {
  port?: number;
  host?: string;
  seed?: number;
  tenants?: string[];
  clients?: Record<string, string>;
  /** Client id → PEM certificate: client assertions from these clients must be PS256-signed by its key. */
  clientCertificates?: Record<string, string>;
  /** Client id → federated tokens accepted as client assertions (workload identity). */
  federatedTokens?: Record<string, string[]>;
  tokenLifetimeSeconds?: number;
  users?: number;
  signInsPerUserPerDay?: number;
  historyDays?: number;
  generate?: boolean;
  arrivalLatency?: { p50Seconds: number; p99Seconds: number; maxSeconds: number } | false;
  republishRate?: number;
  pageSize?: { shortPageRate?: number };
  throttle?: ThrottleRule | false;
  pageLatencyMs?: number;
  clockOffsetMs?: number;
  /** Overrides the simulator clock entirely (tests); clockOffsetMs is added on top. */
  clock?: () => Date;
  timeScale?: number;
  mode?: SimulatorMode;
  faults?: FaultRule[];
  /** Max events kept in the generated-bucket LRU cache (default 100000). */
  cacheEvents?: number;
  /** Generated directory audit events per user per day (default 2). */
  auditsPerUserPerDay?: number;
  /**
   * Quieter weekends, as in real tenants (GenConfig). Off unless asked for (the demo and `simulate` ask): tests and
   * benchmarks count on a day's volume whatever day of the week they run on.
   */
  quietWeekends?: boolean;
}
export interface RequestRecord {
  n: number;
  at: string;
  method: string;
  path: string;
  query: Record<string, string>;
  status: number; // 0 when the connection was reset or abandoned
  tenantId: string | null;
  authorized: boolean;
  hadAuthorization: boolean;
  kind: "token" | "graph" | "other";
  /** Graph request number (or token request number) as used by fault matching. */
  seq?: number;
  fault?: string;
}
export interface Simulator {
  url: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  now(): Date;
  addEvents(events: Array<Record<string, unknown>>, opts?: { tenantId?: string; visibleAt?: Date }): void;
  republish(id: string, patch: Record<string, unknown>, opts?: { tenantId?: string; visibleAt?: Date }): void;
  visibleEvents(tenantId?: string, at?: Date): Array<Record<string, unknown>>;
  /** Adds directory audit events (keyed by id, timed by activityDateTime), served by /auditLogs/directoryAudits. */
  addAudits(events: Array<Record<string, unknown>>, opts?: { tenantId?: string; visibleAt?: Date }): void;
  /** The oracle for directory audits: latest visible version of every audit event, newest first. */
  visibleAudits(tenantId?: string, at?: Date): Array<Record<string, unknown>>;
  /** Replaces the fault rules; `requestNumber` in them counts Graph (or token) requests from now on. */
  setFaults(rules: FaultRule[]): void;
  setMode(mode: SimulatorOptions["mode"]): void;
  /** Shifts the simulator clock (adds to clockOffsetMs). */
  setClockOffset(ms: number): void;
  /** Back to the mode, fault rules and clock offset it was started with (test scaffolds call it between tests). */
  reset(): void;
  requests(): RequestRecord[];
  resetRequests(): void;
  /** Every access token the token endpoint issued (secret canaries for log checks). */
  issuedTokens(): string[];
  close(): Promise<void>;
}
