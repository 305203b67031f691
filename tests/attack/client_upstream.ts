/**
 * A raw-socket upstream for attack tests: it reads each request as bytes (head, then a
 * Content-Length or chunked body), records `<method> <path> <body length>`, and answers
 * that line with keep-alive. `Deno.serve` cannot be the witness here: it drops the body
 * of a GET.
 *
 * @module
 */

/** A running recording upstream. */
export interface RecordingUpstream {
  address: string;
  /** One line per complete request received. */
  seen: string[];
  /** The raw request heads received, one char per byte. */
  heads: string[];
  close(): void;
}

const encoder = new TextEncoder();

/** Starts the upstream on a free loopback port. */
export function startRecordingUpstream(): RecordingUpstream {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const upstream: RecordingUpstream = {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    seen: [],
    heads: [],
    close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // closed
        }
      }
    },
  };
  (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      serve(conn, upstream).finally(() => conns.delete(conn));
    }
  })().catch(() => {});
  return upstream;
}

async function serve(conn: Deno.Conn, upstream: RecordingUpstream): Promise<void> {
  let data = "";
  const buffer = new Uint8Array(64 * 1024);
  const more = async () => {
    const n = await conn.read(buffer);
    if (n === null) return false;
    data += String.fromCharCode(...buffer.subarray(0, n));
    return true;
  };
  try {
    for (;;) {
      let end = data.indexOf("\r\n\r\n");
      while (end === -1) {
        if (!await more()) return;
        end = data.indexOf("\r\n\r\n");
      }
      const head = data.slice(0, end);
      data = data.slice(end + 4);
      upstream.heads.push(head);
      const [method, path] = head.split(" ");
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      let bodyLength = 0;
      if (length !== null) {
        bodyLength = Number(length[1]);
        while (data.length < bodyLength) if (!await more()) return;
        data = data.slice(bodyLength);
      } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
        for (;;) {
          let lf = data.indexOf("\r\n");
          while (lf === -1) {
            if (!await more()) return;
            lf = data.indexOf("\r\n");
          }
          const size = parseInt(data.slice(0, lf), 16);
          while (data.length < lf + 2 + size + 2) if (!await more()) return;
          data = data.slice(lf + 2 + size + 2);
          if (size === 0) break;
          bodyLength += size;
        }
      }
      const line = `${method} ${path} ${bodyLength}`;
      upstream.seen.push(line);
      await conn.write(
        encoder.encode(`HTTP/1.1 200 OK\r\ncontent-length: ${line.length}\r\n\r\n${line}`),
      );
    }
  } catch {
    // the proxy closed the connection
  } finally {
    try {
      conn.close();
    } catch {
      // closed
    }
  }
}
