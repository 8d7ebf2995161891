// Public entry point of the Microsoft Graph simulator.
export { startSimulator, DEFAULT_CLIENT } from "./server.ts";
export type { Simulator } from "./server.ts";
export { makeSignIn } from "./events.ts";
export { makeDirectoryAudit } from "./audits.ts";
export { mulberry32 } from "./random.ts";
export type { Rng } from "./random.ts";
export { runSimulatorCli, parseSimulateArgs } from "./main.ts";
