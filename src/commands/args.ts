// Command-line values: times and ages, and the one line a usage error prints. Pure; no `process`.

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

import { parseDuration } from "../time.ts";

/** An ISO-8601 time with a zone (or a bare date), or an age before `now` (`7d`, `12h`); undefined otherwise. */
export function parseTime(text: string | undefined, now: Date): Date | undefined {
  if (text === undefined) {
    return undefined;
  }
  const age = parseDuration(text);
  if (age !== undefined) {
    return new Date(now.getTime() - age);
  }
  // Date.parse alone reads "1" as 2001-01-01 and "March 1" as a local date: only the ISO forms are times here.
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/.test(text.trim())) {
    return undefined;
  }
  const ms = Date.parse(text.trim());
  return Number.isFinite(ms) ? new Date(ms) : undefined;
}

/** A whole number in [min, max] written in decimal digits; undefined otherwise (`6x`, `1e3`, `-1`, `2.5`). */
export function parseWholeNumber(text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined || !/^\d+$/.test(text.trim())) {
    return undefined;
  }
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

export type ParsedArgs = { values: Record<string, string | boolean | undefined>; positionals: string[] };

/**
 * Parses `args` strictly against `options` (plus --help/-h): an unknown flag, a flag without its value or an
 * unexpected positional is a usage error, returned as one line naming it.
 */
export function parseCommandArgs(
  command: string,
  args: readonly string[],
  options: ParseArgsOptionsConfig,
  allowPositionals: boolean,
): ParsedArgs | { usageError: string } {
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals,
      strict: true,
    });
    return { values: values, positionals };
  } catch (error) {
    return { usageError: `${command}: ${describeParseError(error)}` };
  }
}

function describeParseError(error: unknown): string {
  const { code, message } = error as { code?: string; message: string };
  const quoted = /'([^']+)'/.exec(message)?.[1];
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown option ${quoted ?? message}`;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `unexpected argument ${quoted ?? message}`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return (message.split(". ")[0] ?? message).replace(/^Option '([^']+)'/, "option $1");
    default:
      return message.split("\n")[0] ?? message;
  }
}

/** `status: unknown option --jsn; usage: node src/cli.ts status [--json] (more: status --help)` */
export function usageLine(problem: string, command: string, help: string): string {
  const usage = (help.split("\n")[0] ?? "").replace(/^Usage:\s*/, "");
  return `${problem}; usage: ${usage} (more: node src/cli.ts ${command} --help)`;
}
