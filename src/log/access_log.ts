/**
 * Access logs in MOSN's variable format: `%start_time% %response_code% %duration%`.
 * The format is compiled once per config load into a list of parts, so a log line costs
 * one pass over them.
 *
 * @module
 */

/** What one finished stream tells the access log. */
export interface AccessRecord {
  startTime: number;
  durationMs: number;
  method: string;
  path: string;
  protocol: string;
  status: number;
  /** MOSN-style response flag: NR no route, UF connect failure, UO overflow, UT timeout, … */
  flag: string;
  bytesSent: number;
  remoteAddr: { hostname: string; port: number };
  upstreamHost: string;
  requestHeaders: Headers;
  listener: string;
}

type Part = string | ((record: AccessRecord) => string);

const VARIABLES: Record<string, (r: AccessRecord) => string> = {
  start_time: (r) => new Date(r.startTime).toISOString(),
  duration: (r) => `${r.durationMs}ms`,
  request_received_duration: (r) => `${r.durationMs}ms`,
  response_received_duration: (r) => `${r.durationMs}ms`,
  request_finished_duration: (r) => `${r.durationMs}ms`,
  bytes_sent: (r) => r.bytesSent < 0 ? "-" : String(r.bytesSent),
  bytes_received: (r) => r.requestHeaders.get("content-length") ?? "0",
  protocol: (r) => r.protocol,
  response_code: (r) => String(r.status),
  response_flag: (r) => r.flag || "-",
  method: (r) => r.method,
  path: (r) => r.path,
  request_id: (r) => r.requestHeaders.get("x-request-id") ?? "-",
  listener: (r) => r.listener,
  downstream_remote_address: (r) => `${r.remoteAddr.hostname}:${r.remoteAddr.port}`,
  downstream_local_address: (r) => r.listener,
  upstream_host: (r) => r.upstreamHost || "-",
  upstream_local_address: () => "-",
  // A constant of the runtime that compiles the format; see compileAccessLogFormat.
  worker: () => "0",
};

/** MOSN's default access log format. */
export const DEFAULT_ACCESS_LOG_FORMAT =
  "%start_time% %request_received_duration% %response_received_duration% %bytes_sent% " +
  "%bytes_received% %protocol% %response_code% %duration% %response_flag% %response_code% " +
  "%upstream_local_address% %downstream_local_address% %downstream_remote_address% %upstream_host%";

/** The variable names a format may use (besides `%request_header_<name>%`). */
export const ACCESS_LOG_VARIABLES: readonly string[] = Object.keys(VARIABLES);

/** Options of {@linkcode compileAccessLogFormat}. */
export interface AccessLogFormatOptions {
  /**
   * The index of the worker whose runtime writes the lines, printed by `%worker%`. It is
   * the same for every line of a runtime, so it is compiled into the format as text.
   *
   * @default {0}
   */
  worker?: number;
}

/**
 * Compiles a format into a function from record to line.
 *
 * @param format The format, e.g. `%start_time% %response_code% w%worker%`.
 * @param options The worker index for `%worker%`.
 * @returns A function from record to line.
 * @throws {Error} naming the first unknown variable.
 */
export function compileAccessLogFormat(
  format: string,
  options: AccessLogFormatOptions = {},
): (record: AccessRecord) => string {
  const parts: Part[] = [];
  const pattern = /%([a-zA-Z0-9_\-]+)%/g;
  let last = 0;
  for (const match of format.matchAll(pattern)) {
    if (match.index > last) parts.push(format.slice(last, match.index));
    parts.push(match[1] === "worker" ? String(options.worker ?? 0) : variable(match[1]));
    last = match.index + match[0].length;
  }
  if (last < format.length) parts.push(format.slice(last));
  return (record) => {
    let line = "";
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      line += typeof part === "string" ? part : part(record);
    }
    return line;
  };
}

function variable(name: string): (record: AccessRecord) => string {
  if (name.startsWith("request_header_")) {
    const header = name.slice("request_header_".length).replaceAll("_", "-");
    return (r) => r.requestHeaders.get(header) ?? "-";
  }
  const get = VARIABLES[name];
  if (get === undefined) {
    throw new Error(
      `Unknown access log variable %${name}%; known: ${ACCESS_LOG_VARIABLES.join(", ")}, ` +
        "request_header_<name>",
    );
  }
  return get;
}

/** A destination for access log lines: stdout, stderr, or a file opened for append. */
export class AccessLogWriter {
  #file: Deno.FsFile | undefined;
  #target: { writeSync(p: Uint8Array): number };
  #encoder = new TextEncoder();
  #pending: string[] = [];
  #scheduled = false;

  /** Opens the destination. */
  constructor(path: string) {
    if (path === "stdout" || path === "") this.#target = Deno.stdout;
    else if (path === "stderr") this.#target = Deno.stderr;
    else {
      this.#file = Deno.openSync(path, { append: true, create: true });
      this.#target = this.#file;
    }
  }

  /** Queues a line; lines are written together once per macrotask to save syscalls. */
  write(line: string): void {
    this.#pending.push(line);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setTimeout(() => this.flush(), 0);
    }
  }

  /** Writes queued lines now. */
  flush(): void {
    this.#scheduled = false;
    if (this.#pending.length === 0) return;
    const bytes = this.#encoder.encode(this.#pending.join("\n") + "\n");
    this.#pending.length = 0;
    let offset = 0;
    while (offset < bytes.length) offset += this.#target.writeSync(bytes.subarray(offset));
  }

  /** Flushes and closes a file destination. */
  close(): void {
    this.flush();
    this.#file?.close();
  }
}
