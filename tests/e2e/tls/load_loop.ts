/**
 * A request loop for rotation tests: workers that send HTTP/1.1 requests over TLS and
 * count every failure. Half the workers keep their connection alive (and reconnect when
 * the server says `Connection: close`), half open a new connection per request. The client
 * is hand-written on `Deno.connectTls` so that nothing retries a failed request behind
 * the test's back (as `fetch` does on a stale pooled connection).
 *
 * @module
 */

/** What a loop saw. */
export interface LoopResult {
  ok: number;
  failures: string[];
}

/** A running loop. */
export interface RequestLoop {
  /** Stops the workers and resolves with what they saw. */
  stop(): Promise<LoopResult>;
  /** Requests answered so far. */
  readonly ok: number;
}

/**
 * Starts `workers` workers sending `GET /` to `hostname:port`, trusting `caCerts`.
 *
 * @param target Where to connect and which CAs to trust.
 * @param workers How many workers; even ones keep connections alive.
 * @returns The running loop.
 */
export function startRequestLoop(
  target: { hostname: string; port: number; caCerts: string[] },
  workers = 4,
): RequestLoop {
  const result: LoopResult = { ok: 0, failures: [] };
  let stopped = false;
  const run = async (keepAlive: boolean) => {
    let conn: Deno.TlsConn | undefined;
    let reader: ResponseReader | undefined;
    // Bounded: at most 200 000 requests per worker, and it stops when told.
    for (let i = 0; i < 200_000 && !stopped; i++) {
      try {
        if (conn === undefined) {
          conn = await Deno.connectTls({
            hostname: target.hostname,
            port: target.port,
            caCerts: target.caCerts,
            alpnProtocols: ["http/1.1"],
          });
          reader = new ResponseReader(conn);
        }
        const close = keepAlive ? "" : "connection: close\r\n";
        await conn.write(
          new TextEncoder().encode(`GET / HTTP/1.1\r\nhost: localhost\r\n${close}\r\n`),
        );
        const response = await reader!.read();
        if (response.status !== 200) throw new Error(`status ${response.status}`);
        result.ok++;
        if (!keepAlive || response.close) {
          conn.close();
          conn = undefined;
        }
      } catch (error) {
        result.failures.push(error instanceof Error ? error.message : String(error));
        try {
          conn?.close();
        } catch {
          // Already closed.
        }
        conn = undefined;
      }
    }
    try {
      conn?.close();
    } catch {
      // Already closed.
    }
  };
  const running = Array.from({ length: workers }, (_, i) => run(i % 2 === 0));
  return {
    get ok() {
      return result.ok;
    },
    async stop() {
      stopped = true;
      await Promise.all(running);
      return result;
    },
  };
}

/** Reads HTTP/1.1 responses with a content-length from one connection. */
class ResponseReader {
  #conn: Deno.Conn;
  #buffer = "";
  #decoder = new TextDecoder();

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async read(): Promise<{ status: number; close: boolean }> {
    const chunk = new Uint8Array(16 * 1024);
    for (let reads = 0; reads < 1000; reads++) {
      const end = this.#buffer.indexOf("\r\n\r\n");
      if (end >= 0) {
        const head = this.#buffer.slice(0, end).toLowerCase();
        const length = Number(/content-length: *(\d+)/.exec(head)?.[1] ?? "0");
        if (this.#buffer.length >= end + 4 + length) {
          this.#buffer = this.#buffer.slice(end + 4 + length);
          return {
            status: Number(head.slice(9, 12)),
            close: /\r\nconnection: *close/.test(head),
          };
        }
      }
      const n = await this.#conn.read(chunk);
      if (n === null) throw new Error("the connection closed before a response");
      this.#buffer += this.#decoder.decode(chunk.subarray(0, n), { stream: true });
    }
    throw new Error("no complete response after 1000 reads");
  }
}
