/**
 * How many workers to run: the `--workers` flag, else the config's `workers:`.
 *
 * @module
 */

/** Raised for a `--workers` value that is not a count or `auto`. */
export class WorkersFlagError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "WorkersFlagError";
  }
}

/**
 * Parses the value of `--workers`.
 *
 * @param value `auto` or a whole number from 1 to 1024.
 * @returns The count, or `"auto"`.
 * @throws {WorkersFlagError} for anything else.
 */
export function parseWorkersFlag(value: string | undefined): number | "auto" {
  if (value === "auto") return "auto";
  const n = Number(value);
  if (value === undefined || !/^\d+$/.test(value) || n < 1 || n > 1024) {
    throw new WorkersFlagError(
      `--workers expects a number from 1 to 1024 or "auto", got ${JSON.stringify(value ?? "")}`,
    );
  }
  return n;
}

/**
 * Resolves `auto` to the number of cores (`navigator.hardwareConcurrency`).
 *
 * @param workers A count or `auto`.
 * @returns How many workers to run, at least 1.
 */
export function resolveWorkerCount(workers: number | "auto"): number {
  if (workers !== "auto") return workers;
  return Math.max(1, navigator.hardwareConcurrency || 1);
}

/**
 * Takes `--workers N` (or `--workers=N`) out of the command line.
 *
 * @param args The arguments.
 * @returns The other arguments, and the flag's value when given.
 * @throws {WorkersFlagError} when the value is missing or invalid.
 */
export function takeWorkersFlag(
  args: readonly string[],
): { args: string[]; workers: number | "auto" | undefined } {
  const rest: string[] = [];
  let workers: number | "auto" | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--workers") workers = parseWorkersFlag(args[++i]);
    else if (arg.startsWith("--workers=")) workers = parseWorkersFlag(arg.slice(10));
    else rest.push(arg);
  }
  return { args: rest, workers };
}
