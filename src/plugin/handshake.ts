/**
 * The one line a plugin prints on stdout once its gRPC server listens:
 * `CORE|APP|NETWORK|ADDR|PROTOCOL[|CERT]`, as MOSN and hashicorp/go-plugin define it.
 *
 * @module
 */

/** The core protocol version every plugin must print (go-plugin's). */
export const CORE_PROTOCOL_VERSION = 1;

/** The app protocol version of MOSN's plugin service. */
export const APP_PROTOCOL_VERSION = 1;

/** A parsed, validated handshake. */
export interface Handshake {
  /** `tcp` or `unix`. */
  network: "tcp" | "unix";
  /** `host:port` for tcp, a socket path for unix. */
  address: string;
  /** The gRPC target for `@grpc/grpc-js`: `host:port` or `unix:///path`. */
  target: string;
}

/** Raised when a plugin prints a handshake Mosaic cannot use. */
export class HandshakeError extends Error {
  /** The plugin's name. */
  readonly plugin: string;
  /** The line the plugin printed. */
  readonly line: string;

  /** Creates the error. */
  constructor(plugin: string, line: string, problem: string) {
    super(
      `Plugin "${plugin}" printed a bad handshake: ${problem}; it printed ${quote(line)} ` +
        `(expected "CORE|APP|NETWORK|ADDR|PROTOCOL", e.g. "1|1|tcp|127.0.0.1:1234|grpc")`,
    );
    this.name = "HandshakeError";
    this.plugin = plugin;
    this.line = line;
  }
}

/** Quotes what a plugin printed, cut to a readable length. */
export function quote(text: string, max = 200): string {
  const cut = text.length > max ? text.slice(0, max) + "…" : text;
  return JSON.stringify(cut);
}

/**
 * Parses and validates a handshake line.
 *
 * Accepts the 5-field line (`1|1|tcp|127.0.0.1:1234|grpc`) and go-plugin's 6-field line,
 * whose last field is a certificate or empty (`1|1|unix|/tmp/plugin1|grpc|`).
 *
 * @param plugin The plugin's name, for error messages.
 * @param line The line as printed, without its newline (a trailing `\r` is ignored).
 * @returns The handshake.
 * @throws {HandshakeError} when the line is not a usable handshake.
 *
 * @example
 * ```ts
 * const h = parseHandshake("checker", "1|1|unix|/tmp/p/plugin.sock|grpc|");
 * // h.target === "unix:///tmp/p/plugin.sock"
 * ```
 */
export function parseHandshake(plugin: string, line: string): Handshake {
  const text = line.endsWith("\r") ? line.slice(0, -1) : line;
  const parts = text.split("|");
  if (parts.length < 5 || parts.length > 6) {
    throw new HandshakeError(
      plugin,
      line,
      `expected 5 or 6 "|"-separated fields, got ${parts.length}`,
    );
  }
  const [core, app, network, address, protocol, cert] = parts;
  if (core !== String(CORE_PROTOCOL_VERSION)) {
    throw new HandshakeError(
      plugin,
      line,
      `core protocol version must be ${CORE_PROTOCOL_VERSION}, got ${quote(core)}`,
    );
  }
  if (app !== String(APP_PROTOCOL_VERSION)) {
    throw new HandshakeError(
      plugin,
      line,
      `app protocol version must be ${APP_PROTOCOL_VERSION}, got ${quote(app)}`,
    );
  }
  if (network !== "tcp" && network !== "unix") {
    throw new HandshakeError(
      plugin,
      line,
      `network must be "tcp" or "unix", got ${quote(network)}`,
    );
  }
  if (protocol === "netrpc") {
    throw new HandshakeError(
      plugin,
      line,
      `protocol "netrpc" (Go net/rpc) is not supported, only "grpc"`,
    );
  }
  if (protocol !== "grpc") {
    throw new HandshakeError(plugin, line, `protocol must be "grpc", got ${quote(protocol)}`);
  }
  if (address === "") {
    throw new HandshakeError(plugin, line, "the address is empty");
  }
  if (network === "unix" && !address.startsWith("/")) {
    throw new HandshakeError(
      plugin,
      line,
      `a unix socket address must be an absolute path, got ${quote(address)}`,
    );
  }
  if (network === "tcp" && !/^(\[[0-9a-fA-F:.]+\]|[^:\[\]]+):\d{1,5}$/.test(address)) {
    throw new HandshakeError(
      plugin,
      line,
      `a tcp address must be host:port, got ${quote(address)}`,
    );
  }
  if (cert) {
    // go-plugin prints a certificate only for AutoMTLS, which needs a client
    // certificate Mosaic never sends: connecting in plain text would fail later.
    throw new HandshakeError(
      plugin,
      line,
      "it printed a TLS certificate (go-plugin AutoMTLS), which Mosaic does not support",
    );
  }
  const target = network === "unix" ? `unix://${address}` : address;
  return { network, address, target };
}
