// The root pino logger: JSON lines to stdout. Secrets are kept out structurally (we never log config or headers
// wholesale); `redact` is the second line of defence for the field names a secret or token could travel under, and
// every line passes through src/redact.ts before it is written (known secrets and credential-shaped values, e.g. a
// hostile token endpoint echoing the request form in an error that is then logged).

import { pino, type DestinationStream, type Logger } from "pino";

import { redact } from "./redact.ts";

export type { Logger };

const REDACT_PATHS = [
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
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

export function createLogger(level: LogLevel, destination: DestinationStream | 1 | 2 = 1): Logger {
  return pino(
    {
      level,
      base: { service: "signin-ingest" },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      hooks: { streamWrite: redact },
    },
    typeof destination === "number"
      ? survivesClosedOutput(pino.destination({ dest: destination, sync: true }))
      : destination,
  );
}

/**
 * A file-descriptor destination whose write errors are dropped: pino drops EPIPE itself, but a closed terminal answers
 * EIO, which would be thrown at the next log call (the "shutting down" line after SIGHUP, say) and end the process
 * before its shutdown ran. Lines written after that are lost; the work is not.
 */
function survivesClosedOutput(stream: ReturnType<typeof pino.destination>): DestinationStream {
  stream.on("error", () => undefined);
  return stream;
}
