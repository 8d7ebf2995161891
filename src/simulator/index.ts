// Public entry point of the Microsoft Graph simulator.
export { startSimulator, DEFAULT_CLIENT, DEFAULT_SECRET, DEFAULT_TENANT } from "./server.ts";
export type { RequestRecord, Simulator, SimulatorMode, SimulatorOptions } from "./server.ts";
export type { FaultMatch, FaultRule } from "./faults.ts";
export { makeSignIn } from "./events.ts";
export { makeDirectoryAudit } from "./audits.ts";
export { mulberry32 } from "./random.ts";
export type { Rng } from "./random.ts";
export { runSimulatorCli, simulateCommand, parseSimulateArgs } from "./main.ts";
