/**
 * Real TLS upstreams for the client tests: a `Deno.listenTls` echo server and a
 * `node:tls` echo server that records the SNI name and the client certificate it saw.
 *
 * @module
 */

import { createServer, type TLSSocket } from "node:tls";

/** A running test upstream. */
export interface TestUpstream {
  port: number;
  /** What the node server saw of each secure connection. */
  seen: { serverName: string | undefined; authorized: boolean; clientCn: string | undefined }[];
  /** Handshake failures the node server reported. */
  failures: string[];
  close(): Promise<void>;
}

/** Starts a `Deno.listenTls` server on 127.0.0.1 that echoes what it reads. */
export function startDenoEcho(
  cert: string,
  key: string,
  alpnProtocols?: string[],
): TestUpstream {
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert, key, alpnProtocols });
  const conns = new Set<Deno.Conn>();
  const tasks: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      tasks.push(
        (async () => {
          try {
            const buffer = new Uint8Array(4096);
            for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
              await conn.write(buffer.subarray(0, n));
            }
          } catch {
            // A client that failed verification aborts the handshake: nothing to echo.
          } finally {
            conns.delete(conn);
            try {
              conn.close();
            } catch {
              // Already closed.
            }
          }
        })(),
      );
    }
  })();
  return {
    port: listener.addr.port,
    seen: [],
    failures: [],
    async close() {
      listener.close();
      await accepting.catch(() => {});
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      await Promise.allSettled(tasks);
    },
  };
}

/** Starts a `node:tls` echo server on 127.0.0.1. */
export async function startNodeEcho(options: {
  cert: string;
  key: string;
  ca?: string;
  requestCert?: boolean;
}): Promise<TestUpstream> {
  const sockets = new Set<TLSSocket>();
  const upstream: TestUpstream = {
    port: 0,
    seen: [],
    failures: [],
    close: () => Promise.resolve(),
  };
  const server = createServer({
    cert: options.cert,
    key: options.key,
    ca: options.ca === undefined ? undefined : [options.ca],
    requestCert: options.requestCert ?? false,
    rejectUnauthorized: options.requestCert ?? false,
  }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    const servername = (socket as { servername?: unknown }).servername;
    const peer = socket.getPeerCertificate();
    upstream.seen.push({
      serverName: typeof servername === "string" && servername !== "" ? servername : undefined,
      authorized: socket.authorized,
      clientCn: [peer?.subject?.CN].flat()[0],
    });
    socket.pipe(socket);
  });
  server.on("tlsClientError", (error: Error) => upstream.failures.push(error.message));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  upstream.port = (server.address() as { port: number }).port;
  upstream.close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return upstream;
}

/** Writes `text` and reads until as many bytes came back. */
export async function echo(conn: Deno.Conn, text: string): Promise<string> {
  const bytes = new TextEncoder().encode(text);
  await conn.write(bytes);
  const received = new Uint8Array(bytes.byteLength);
  let got = 0;
  while (got < received.byteLength) {
    const n = await conn.read(received.subarray(got));
    if (n === null) throw new Error(`Connection ended after ${got} bytes`);
    got += n;
  }
  return new TextDecoder().decode(received);
}

/**
 * Starts a `Deno.listenTls` server that answers one byte for every two it reads, so a
 * client that writes twice per exchange waits on Nagle's algorithm (~40 ms) unless its
 * socket has no-delay set.
 */
export function startPairServer(cert: string, key: string): TestUpstream {
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert, key });
  const tasks: Promise<void>[] = [];
  const conns = new Set<Deno.Conn>();
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      tasks.push((async () => {
        const buffer = new Uint8Array(64);
        let pending = 0;
        try {
          for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
            pending += n;
            for (; pending >= 2; pending -= 2) await conn.write(new Uint8Array([1]));
          }
        } catch {
          // The client went away.
        } finally {
          conns.delete(conn);
          conn.close();
        }
      })());
    }
  })();
  return {
    port: listener.addr.port,
    seen: [],
    failures: [],
    async close() {
      listener.close();
      await accepting.catch(() => {});
      for (const conn of conns) conn.close();
      await Promise.allSettled(tasks);
    },
  };
}

/** Runs `rounds` exchanges of two one-byte writes and a one-byte read; returns the ms. */
export async function pairRoundTrips(conn: Deno.Conn, rounds: number): Promise<number> {
  const buffer = new Uint8Array(1);
  const start = performance.now();
  for (let i = 0; i < rounds; i++) {
    await conn.write(new Uint8Array([1]));
    await conn.write(new Uint8Array([2]));
    if (await conn.read(buffer) === null) throw new Error("Connection ended");
  }
  return performance.now() - start;
}
