// The root pino logger: JSON lines to stdout. Secrets are kept out structurally (we never log config or headers
// wholesale); `redact` is the second line of defence for the field names a secret or token could travel under.

import { pino, type DestinationStream, type Logger } from "pino";

import type { LogLevel } from "./config.ts";

export type { Logger };

export const REDACT_PATHS = [
  "clientSecret",
  "client_secret",
  "access_token",
  "accessToken",
  "token",
  "authorization",
  "password",
  "*.clientSecret",
  "*.client_secret",
  "*.access_token",
  "*.accessToken",
  "*.token",
  "*.authorization",
  "*.Authorization",
  "*.password",
  "headers.authorization",
];

/** The root logger, writing JSON lines to `destination` (a stream, or a file descriptor: 1 stdout, 2 stderr). */
export function createLogger(level: LogLevel, destination: DestinationStream | 1 | 2 = 1): Logger {
  return pino(
    {
      level,
      base: { service: "signin-ingest" },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    typeof destination === "number" ? pino.destination({ dest: destination, sync: true }) : destination,
  );
}
