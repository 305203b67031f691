/**
 * Helpers of the TLS end-to-end tests: configs with `tls_context`s, curl, the
 * certificate a listener serves, and TLS upstreams.
 *
 * @module
 */

import { X509Certificate } from "node:crypto";
import { connect as nodeTlsConnect, createServer, type TLSSocket } from "node:tls";

/** A cluster of a TLS test config. */
export interface TlsTestCluster {
  name: string;
  hosts: string[];
  /** Extra cluster keys, e.g. a `tls_context` block (YAML, indented by the caller's 0). */
  extra?: string;
}

/** Options of {@linkcode tlsYaml}. */
export interface TlsTestConfig {
  /** The listener's `tls_context` as a YAML flow map, e.g. `{ status: true, … }`. */
  tls?: string;
  /** Routes of the one virtual host; default: `/` to cluster `up`. */
  routes?: string[];
  clusters?: TlsTestCluster[];
  /** Extra top-level YAML (e.g. `plugins:`). */
  topLevel?: string;
  /** Listener address; default `127.0.0.1:0`. */
  address?: string;
}

/** A route answering 200 `hello over tls` without an upstream. */
export const DIRECT_ROUTE =
  `- match: { prefix: / }\n  direct_response: { status: 200, body: "hello over tls" }`;

/** Renders a config with one listener `l` (TLS when `tls` is given) and router `r`. */
export function tlsYaml(config: TlsTestConfig): string {
  const routes = config.routes ?? ["- match: { prefix: / }\n  route: { cluster_name: up }"];
  const clusters = config.clusters ?? [];
  return `servers:
  - default_log_level: INFO
    routers:
      - router_config_name: r
        virtual_hosts:
          - name: all
            domains: ["*"]
            routers:
${indent(routes.join("\n"), 14)}
    listeners:
      - name: l
        address: ${config.address ?? "127.0.0.1:0"}
        filter_chains:
          - ${config.tls === undefined ? "" : `tls_context: ${config.tls}\n            `}filters:
              - type: proxy
                config: { router_config_name: r }
cluster_manager:
  clusters:${clusters.length === 0 ? " []" : ""}
${
    clusters.map((c) =>
      `    - name: ${c.name}
      type: SIMPLE
      lb_type: LB_ROUNDROBIN
      hosts:
${c.hosts.map((h) => `        - { address: "${h}" }`).join("\n")}
${c.extra ? indent(c.extra, 6) : ""}`
    ).join("\n")
  }
${config.topLevel ?? ""}
`;
}

/** What curl did. */
export interface CurlResult {
  /** curl's exit code (0: a response came). */
  code: number;
  /** The body, then the `-w` output. */
  stdout: string;
  stderr: string;
}

/** Runs curl with a 10 s limit. */
export async function curl(args: string[]): Promise<CurlResult> {
  const out = await new Deno.Command("curl", {
    args: ["-sS", "--max-time", "10", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** The SHA-256 fingerprint of a PEM certificate, as node writes it. */
export function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

/**
 * Connects to `address` (`host:port`) and returns the fingerprint of the certificate it
 * serves, verifying it against `ca`.
 */
export function servedFingerprint(address: string, ca: string[]): Promise<string> {
  const [host, port] = splitAddress(address);
  return new Promise((resolve, reject) => {
    const socket = nodeTlsConnect({ host, port, ca, servername: "localhost" });
    socket.once("error", reject);
    socket.once("secureConnect", () => {
      const seen = socket.getPeerCertificate().fingerprint256;
      socket.end();
      socket.once("close", () => resolve(seen));
    });
  });
}

/** A TLS upstream that answers every request with what it saw of the connection. */
export interface TlsUpstream {
  address: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Starts `Deno.serve` with TLS on 127.0.0.1 (h2 and http/1.1 by ALPN): the body says the
 * request's protocol and the Host it saw.
 */
export function startTlsUpstream(cert: string, key: string): TlsUpstream {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert, key, onListen() {} },
    (request) =>
      Response.json({
        protocol: request.headers.has("host") ? "HTTP/1.1" : "HTTP/2",
        host: request.headers.get("host") ?? new URL(request.url).host,
        forwardedProto: request.headers.get("x-forwarded-proto"),
      }),
  );
  return {
    address: `127.0.0.1:${server.addr.port}`,
    port: server.addr.port,
    close: () => server.shutdown(),
  };
}

/** A `node:tls` upstream that records what it saw of each connection. */
export interface NodeTlsUpstream extends TlsUpstream {
  /** SNI names sent, client certificate names (CN) accepted, handshakes refused. */
  seen: { serverNames: (string | undefined)[]; clients: string[]; refused: number };
}

/**
 * Starts a `node:tls` HTTP/1.1 server on 127.0.0.1 that answers every request
 * `200 hello <client CN or "anonymous">`. With `ca` it requires a client certificate
 * signed by it.
 */
export async function startNodeTlsUpstream(
  options: { cert: string; key: string; ca?: string },
): Promise<NodeTlsUpstream> {
  const sockets = new Set<TLSSocket>();
  const seen = { serverNames: [] as (string | undefined)[], clients: [] as string[], refused: 0 };
  const mtls = options.ca !== undefined;
  const server = createServer({
    cert: options.cert,
    key: options.key,
    ca: mtls ? [options.ca!] : undefined,
    requestCert: mtls,
    rejectUnauthorized: mtls,
  }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    const name = (socket as { servername?: string | false }).servername;
    seen.serverNames.push(typeof name === "string" ? name : undefined);
    const subject = mtls ? socket.getPeerCertificate().subject : undefined;
    const cn = (subject as Record<string, string> | undefined)?.CN ?? "anonymous";
    if (mtls) seen.clients.push(cn);
    let buffered = "";
    socket.on("data", (chunk: Uint8Array) => {
      buffered += new TextDecoder().decode(chunk);
      // Answer each complete request head (the proxy sends no body on GET).
      while (buffered.includes("\r\n\r\n")) {
        buffered = buffered.slice(buffered.indexOf("\r\n\r\n") + 4);
        const body = `hello ${cn}`;
        socket.write(
          "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n" +
            `content-length: ${body.length}\r\n\r\n${body}`,
        );
      }
    });
  });
  server.on("tlsClientError", () => seen.refused++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    address: `127.0.0.1:${port}`,
    port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Waits until `condition` holds, polling every 50 ms, for at most `ms`. */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  what: string,
  ms = 10_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Counts the lines of `text` that match `pattern`. */
export function countLines(text: string, pattern: RegExp): number {
  return text.split("\n").filter((line) => pattern.test(line)).length;
}

function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(":");
  return [address.slice(0, colon), Number(address.slice(colon + 1))];
}

function indent(text: string, spaces: number): string {
  const pad = " ".repeat(spaces);
  return text.split("\n").map((line) => line === "" ? line : pad + line).join("\n");
}
