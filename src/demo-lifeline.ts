// Preloaded into the demo's daemon (`node --import src/demo-lifeline.ts src/cli.ts run`): its stdin is a pipe from
// the demo, which ends when the demo is gone for any reason (a closed terminal, a crash, SIGKILL). The daemon then
// gets the SIGTERM the demo would have sent, and shuts down as usual; it never outlives the demo.

import type { Socket } from "node:net";

const stdin = process.stdin as unknown as Socket;
const stop = () => process.kill(process.pid, "SIGTERM");
stdin.once("end", stop);
stdin.once("error", stop);
stdin.resume();
// Reading stdin must not keep a process alive that is otherwise done.
stdin.unref();
