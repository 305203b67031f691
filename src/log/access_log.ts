/**
 * Access logs in MOSN's variable format (`%start_time% %response_code% %duration%`), with
 * Envoy's command operators (`%BYTES_SENT%`, `%REQ(x)%`, `%RESP(x)%`, …) and a JSON format.
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
  /** Request body bytes, when known (a `Content-Length` or a buffered body); else -1. */
  bytesReceived?: number;
  /** The headers of the response written to the client. */
  responseHeaders?: Headers;
  /** From the start of the stream to the upstream response head, ms; -1 without one. */
  responseDurationMs?: number;
  /** From sending the (last) upstream attempt to its response head, ms; -1 without one. */
  upstreamServiceMs?: number;
  /** The cluster the stream was sent to, "" when none. */
  cluster?: string;
  /** The matched route's `name`, "" when it has none or no route matched. */
  routeName?: string;
  /** Upstream attempts sent (retries included). */
  attempts?: number;
  /** Why the upstream connection failed (`connection refused`, …), "" when it did not. */
  upstreamFailureReason?: string;
  /** The stream's trace id (32 hex digits): its span's when tracing is on, else the `traceparent` read. */
  traceId?: string;
  /** The stream's span id (16 hex digits) when tracing is on. */
  spanId?: string;
}

type Render = (record: AccessRecord) => string;
type Part = string | Render;

const ms = (n: number | undefined) => n === undefined || n < 0 ? "-" : String(Math.round(n));
const dash = (s: string | undefined) => s === undefined || s === "" ? "-" : s;
const bytesReceived = (r: AccessRecord): string => {
  if (r.bytesReceived !== undefined) return r.bytesReceived < 0 ? "-" : String(r.bytesReceived);
  return r.requestHeaders.get("content-length") ?? "0";
};
const traceId = (r: AccessRecord): string => {
  if (r.traceId !== undefined && r.traceId !== "") return r.traceId;
  const parent = r.requestHeaders.get("traceparent");
  return parent !== null && parent.length >= 35 && parent[2] === "-" ? parent.slice(3, 35) : "-";
};

const VARIABLES: Record<string, Render> = {
  // MOSN's names.
  start_time: (r) => new Date(r.startTime).toISOString(),
  duration: (r) => `${r.durationMs}ms`,
  request_received_duration: (r) => `${r.durationMs}ms`,
  response_received_duration: (r) =>
    r.responseDurationMs === undefined || r.responseDurationMs < 0
      ? `${r.durationMs}ms`
      : `${Math.round(r.responseDurationMs)}ms`,
  request_finished_duration: (r) => `${r.durationMs}ms`,
  bytes_sent: (r) => r.bytesSent < 0 ? "-" : String(r.bytesSent),
  bytes_received: bytesReceived,
  protocol: (r) => r.protocol,
  response_code: (r) => String(r.status),
  response_flag: (r) => r.flag || "-",
  // MOSN's alias (Istio's name).
  response_flags: (r) => r.flag || "-",
  method: (r) => r.method,
  path: (r) => r.path,
  request_id: (r) => r.requestHeaders.get("x-request-id") ?? "-",
  listener: (r) => r.listener,
  downstream_remote_address: (r) => `${r.remoteAddr.hostname}:${r.remoteAddr.port}`,
  downstream_local_address: (r) => r.listener,
  upstream_host: (r) => r.upstreamHost || "-",
  upstream_local_address: () => "-",
  upstream_cluster: (r) => dash(r.cluster),
  upstream_transport_failure_reason: (r) => dash(r.upstreamFailureReason),
  route_name: (r) => dash(r.routeName),
  upstream_service_time: (r) => ms(r.upstreamServiceMs),
  trace_id: traceId,
  span_id: (r) => dash(r.spanId),
  // A constant of the runtime that compiles the format; see compileAccessLogFormat.
  worker: () => "0",
  // Envoy's command operators.
  START_TIME: (r) => new Date(r.startTime).toISOString(),
  DURATION: (r) => String(r.durationMs),
  RESPONSE_DURATION: (r) => ms(r.responseDurationMs),
  UPSTREAM_SERVICE_TIME: (r) => ms(r.upstreamServiceMs),
  BYTES_RECEIVED: bytesReceived,
  BYTES_SENT: (r) => r.bytesSent < 0 ? "-" : String(r.bytesSent),
  PROTOCOL: (r) => r.protocol,
  RESPONSE_CODE: (r) => String(r.status),
  RESPONSE_FLAGS: (r) => r.flag || "-",
  UPSTREAM_HOST: (r) => r.upstreamHost || "-",
  UPSTREAM_CLUSTER: (r) => dash(r.cluster),
  ROUTE_NAME: (r) => dash(r.routeName),
  UPSTREAM_REQUEST_ATTEMPT_COUNT: (r) => String(r.attempts ?? 0),
  UPSTREAM_TRANSPORT_FAILURE_REASON: (r) => dash(r.upstreamFailureReason),
  DOWNSTREAM_REMOTE_ADDRESS: (r) => `${r.remoteAddr.hostname}:${r.remoteAddr.port}`,
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: (r) => r.remoteAddr.hostname,
  TRACE_ID: traceId,
};

/** Variables whose value is a number: a JSON format writes them as numbers. */
const NUMERIC = new Set([
  "bytes_sent",
  "bytes_received",
  "response_code",
  "upstream_service_time",
  "DURATION",
  "RESPONSE_DURATION",
  "UPSTREAM_SERVICE_TIME",
  "BYTES_RECEIVED",
  "BYTES_SENT",
  "RESPONSE_CODE",
  "UPSTREAM_REQUEST_ATTEMPT_COUNT",
]);

/** MOSN's default access log format. */
export const DEFAULT_ACCESS_LOG_FORMAT =
  "%start_time% %request_received_duration% %response_received_duration% %bytes_sent% " +
  "%bytes_received% %protocol% %response_code% %duration% %response_flag% %response_code% " +
  "%upstream_local_address% %downstream_local_address% %downstream_remote_address% %upstream_host%";

/**
 * The variable names a format may use (besides `%request_header_<name>%`,
 * `%response_header_<name>%`, `%REQ(name?alt):max%` and `%RESP(name?alt):max%`).
 */
export const ACCESS_LOG_VARIABLES: readonly string[] = Object.keys(VARIABLES);

/**
 * A JSON access log format, as Envoy's `json_format`: each value is a format string (or
 * a nested object of them). A value that is exactly one variable keeps its type: a number
 * for sizes, codes and times, `null` for an absent value (`-`).
 */
export interface JsonAccessLogFormat {
  json_format: JsonFormatFields;
}

/** The fields of a {@linkcode JsonAccessLogFormat}. */
export interface JsonFormatFields {
  [key: string]: string | number | boolean | null | JsonFormatFields;
}

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

const PATTERN = /%(?:(REQ|RESP)\(([^)]*)\)(?::(\d+))?|([a-zA-Z0-9_\-]+))%/g;

/**
 * Compiles a format into a function from record to line.
 *
 * @param format The format, e.g. `%start_time% %response_code% w%worker%`, or a JSON
 *   format `{ json_format: { status: "%RESPONSE_CODE%" } }` (one JSON object per line).
 * @param options The worker index for `%worker%`.
 * @returns A function from record to line.
 * @throws {Error} naming the first unknown variable.
 */
export function compileAccessLogFormat(
  format: string | JsonAccessLogFormat,
  options: AccessLogFormatOptions = {},
): (record: AccessRecord) => string {
  if (typeof format !== "string") return compileJson(format.json_format, options);
  const parts = compileParts(format, options);
  if (parts.length === 1 && typeof parts[0] === "function") return parts[0];
  return (record) => {
    let line = "";
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      line += typeof part === "string" ? part : part(record);
    }
    return line;
  };
}

function compileParts(format: string, options: AccessLogFormatOptions): Part[] {
  const parts: Part[] = [];
  let last = 0;
  for (const match of format.matchAll(PATTERN)) {
    if (match.index > last) parts.push(format.slice(last, match.index));
    parts.push(compileMatch(match, options));
    last = match.index + match[0].length;
  }
  if (last < format.length) parts.push(format.slice(last));
  return parts;
}

function compileMatch(match: RegExpMatchArray, options: AccessLogFormatOptions): Part {
  const [, operator, argument, max, name] = match;
  if (name === "worker") return String(options.worker ?? 0);
  if (operator === undefined) return variable(name);
  const [main, alternative] = argument.split("?", 2).map((h) => h.trim().toLowerCase());
  if (main === "" || (alternative !== undefined && alternative === "")) {
    throw new Error(`Access log variable %${operator}(${argument})% needs a header name`);
  }
  const limit = max === undefined ? Infinity : Number(max);
  const read = operator === "REQ" ? requestHeader : responseHeader;
  return (r) => {
    let value = read(r, main);
    if (value === null && alternative !== undefined) value = read(r, alternative);
    if (value === null) return "-";
    return value.length > limit ? value.slice(0, limit) : value;
  };
}

/** A request header by name; `:method`, `:path`, `:authority` and `:scheme` too. */
function requestHeader(r: AccessRecord, name: string): string | null {
  if (name.charCodeAt(0) === 0x3a /* : */) {
    if (name === ":method") return r.method;
    if (name === ":path") return r.path;
    if (name === ":authority") return r.requestHeaders.get("host");
    if (name === ":scheme") return r.requestHeaders.get("x-forwarded-proto");
    return null;
  }
  return r.requestHeaders.get(name);
}

function responseHeader(r: AccessRecord, name: string): string | null {
  if (name === ":status") return String(r.status);
  return r.responseHeaders?.get(name) ?? null;
}

function compileJson(
  fields: JsonFormatFields,
  options: AccessLogFormatOptions,
): (record: AccessRecord) => string {
  if (fields === null || typeof fields !== "object" || Array.isArray(fields)) {
    throw new Error("Access log json_format must be an object of format strings");
  }
  const build = compileObject(fields, options);
  return (record) => JSON.stringify(build(record));
}

type JsonValue = string | number | boolean | null | { [key: string]: JsonValue };

function compileObject(
  fields: JsonFormatFields,
  options: AccessLogFormatOptions,
): (record: AccessRecord) => Record<string, JsonValue> {
  const entries: [string, (record: AccessRecord) => JsonValue][] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (typeof value === "string") entries.push([key, compileJsonValue(value, options)]);
    else if (value !== null && typeof value === "object") {
      entries.push([key, compileObject(value, options)]);
    } else entries.push([key, () => value]);
  }
  return (record) => {
    const out: Record<string, JsonValue> = {};
    for (let i = 0; i < entries.length; i++) out[entries[i][0]] = entries[i][1](record);
    return out;
  };
}

function compileJsonValue(
  format: string,
  options: AccessLogFormatOptions,
): (record: AccessRecord) => JsonValue {
  const parts = compileParts(format, options);
  const whole = format.match(/^%([a-zA-Z0-9_\-]+)%$/)?.[1];
  if (parts.length === 1 && typeof parts[0] === "function") {
    const render = parts[0];
    const numeric = whole !== undefined && NUMERIC.has(whole);
    return (r) => {
      const s = render(r);
      if (s === "-") return null;
      return numeric ? Number(s) : s;
    };
  }
  const line = compileAccessLogFormat(format, options);
  return (r) => line(r);
}

function variable(name: string): Render {
  if (name.startsWith("request_header_")) {
    const header = name.slice("request_header_".length).replaceAll("_", "-");
    return (r) => r.requestHeaders.get(header) ?? "-";
  }
  if (name.startsWith("response_header_")) {
    const header = name.slice("response_header_".length).replaceAll("_", "-");
    return (r) => r.responseHeaders?.get(header) ?? "-";
  }
  const get = VARIABLES[name];
  if (get === undefined) {
    throw new Error(
      `Unknown access log variable %${name}%; known: ${ACCESS_LOG_VARIABLES.join(", ")}, ` +
        "request_header_<name>, response_header_<name>, REQ(<name>), RESP(<name>)",
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
