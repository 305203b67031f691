/**
 * The error log: LogTape, one category per part (`["mosaic", "filter", "<name>"]`),
 * at the config's `default_log_level`, to stderr, stdout or a file.
 *
 * @module
 */

import {
  configureSync,
  defaultTextFormatter,
  getLogger,
  type Logger,
  type LogRecord,
  resetSync,
} from "@logtape/logtape";
import type { FilterLogger } from "../contract/filter.ts";
import type { LogLevel } from "../config/types.ts";

const encoder = new TextEncoder();

/** Options of {@linkcode configureLogging}. */
export interface LoggingOptions {
  /**
   * The worker this thread is (`workers: N`): every line then starts with `[w<index>]`.
   * Absent in the main thread and with one worker, whose lines have no prefix.
   */
  worker?: number;
}

/**
 * Sends every `mosaic` log line at `level` or above to `path` (`stdout`, `stderr` or a
 * file opened for append). Calling it again replaces the previous setup.
 *
 * @param level The lowest level written.
 * @param path `stdout`, `stderr` (also `""`) or a file.
 * @param options The worker index, in a worker thread.
 */
export function configureLogging(
  level: LogLevel,
  path: string,
  options: LoggingOptions = {},
): void {
  const target = path === "stdout"
    ? Deno.stdout
    : path === "stderr" || path === ""
    ? Deno.stderr
    : Deno.openSync(path, { append: true, create: true });
  const prefix = options.worker === undefined ? "" : `[w${options.worker}] `;
  const sink = (record: LogRecord) => {
    const bytes = encoder.encode(prefix + defaultTextFormatter(record));
    let offset = 0;
    while (offset < bytes.length) offset += target.writeSync(bytes.subarray(offset));
  };
  resetSync();
  configureSync({
    reset: true,
    sinks: { main: sink },
    loggers: [
      { category: ["mosaic"], lowestLevel: level, sinks: ["main"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["main"] },
    ],
  });
}

/** The logger of a part of Mosaic, e.g. `logger("proxy")`. */
export function logger(...category: string[]): Logger {
  return getLogger(["mosaic", ...category]);
}

/** A filter's logger: category `mosaic.filter.<name>`, the name in every line. */
export function filterLogger(name: string): FilterLogger {
  const log = getLogger(["mosaic", "filter", name]);
  return {
    debug: (message, properties) => log.debug(escapeBraces(message), properties ?? {}),
    info: (message, properties) => log.info(escapeBraces(message), properties ?? {}),
    warn: (message, properties) => log.warn(escapeBraces(message), properties ?? {}),
    error: (message, properties) => log.error(escapeBraces(message), properties ?? {}),
  };
}

/** LogTape reads `{name}` as a placeholder; a filter's message is plain text. */
function escapeBraces(message: string): string {
  return message.includes("{") || message.includes("}")
    ? message.replaceAll("{", "{{").replaceAll("}", "}}")
    : message;
}
