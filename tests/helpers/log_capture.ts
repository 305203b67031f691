/**
 * Captures Mosaic's log lines in memory for a test.
 *
 * @module
 */

import { configure, type LogRecord, reset } from "@logtape/logtape";

/** Runs `body` with every `mosaic` log line collected as rendered text. */
export async function withLogCapture(body: (lines: string[]) => Promise<void>): Promise<void> {
  const lines: string[] = [];
  await configure({
    reset: true,
    sinks: {
      memory: (record: LogRecord) => {
        lines.push(
          `${record.level} ${record.category.join(".")}: ${
            record.message.map((part) => typeof part === "string" ? part : String(part)).join("")
          }`,
        );
      },
    },
    loggers: [
      { category: ["mosaic"], lowestLevel: "debug", sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: ["memory"] },
    ],
  });
  try {
    await body(lines);
  } finally {
    await reset();
  }
}
