/**
 * The floor: the smallest honest HTTP proxy Deno allows, for the load benchmark to show
 * how much of Mosaic's cost is Mosaic's own. `Deno.serve` downstream; upstream, a
 * keep-alive pool of `Deno.connect` sockets with `setNoDelay`. It forwards the method,
 * path, headers and a buffered body, and reads responses framed by Content-Length only
 * (the benchmark's nginx upstream sends nothing else); anything else is a 502, never a
 * wrong answer. No routing, no filters, no timeouts, no hop-by-hop handling.
 *
 * Usage: `deno run --allow-net bench/floor/proxy.ts PORT UPSTREAM_HOST:PORT`
 *
 * @module
 */

const [portArg, upstreamArg] = Deno.args;
const [upstreamHost, upstreamPort] = upstreamArg.split(":");
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const idle: Upstream[] = [];

/** One upstream connection and the bytes read past the last response. */
interface Upstream {
  conn: Deno.TcpConn;
  buffered: Uint8Array;
}

async function connect(): Promise<Upstream> {
  const conn = await Deno.connect({ hostname: upstreamHost, port: Number(upstreamPort) });
  conn.setNoDelay(true);
  return { conn, buffered: new Uint8Array(0) };
}

function append(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.byteLength === 0) return b;
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}

function headEnd(bytes: Uint8Array): number {
  for (let i = 3; i < bytes.byteLength; i++) {
    if (bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13) {
      return i + 1;
    }
  }
  return -1;
}

async function readMore(upstream: Upstream, scratch: Uint8Array): Promise<void> {
  const n = await upstream.conn.read(scratch);
  if (n === null) throw new Error("upstream closed");
  upstream.buffered = append(upstream.buffered, scratch.slice(0, n));
}

async function exchange(upstream: Upstream, request: Request): Promise<Response> {
  const url = request.url;
  const path = url.slice(url.indexOf("/", url.indexOf("//") + 2));
  const body = request.body === null ? null : new Uint8Array(await request.arrayBuffer());
  let head = `${request.method} ${path} HTTP/1.1\r\n`;
  for (const [name, value] of request.headers) {
    if (name !== "content-length") head += `${name}: ${value}\r\n`;
  }
  head += `content-length: ${body?.byteLength ?? 0}\r\n\r\n`;
  await upstream.conn.write(
    body === null ? encoder.encode(head) : append(encoder.encode(head), body),
  );

  const scratch = new Uint8Array(16384);
  let end = headEnd(upstream.buffered);
  while (end === -1) {
    await readMore(upstream, scratch);
    end = headEnd(upstream.buffered);
  }
  const lines = decoder.decode(upstream.buffered.subarray(0, end - 4)).split("\r\n");
  const status = Number(lines[0].slice(9, 12));
  const headers = new Headers();
  let length = -1;
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(":");
    const name = lines[i].slice(0, colon).toLowerCase();
    const value = lines[i].slice(colon + 1).trim();
    if (name === "content-length") length = Number(value);
    else if (name === "transfer-encoding") throw new Error("not framed by Content-Length");
    else if (name !== "connection" && name !== "keep-alive") headers.append(name, value);
  }
  if (length < 0) throw new Error("no Content-Length");
  while (upstream.buffered.byteLength < end + length) await readMore(upstream, scratch);
  const responseBody = upstream.buffered.slice(end, end + length);
  upstream.buffered = upstream.buffered.slice(end + length);
  return new Response(responseBody, { status, headers });
}

Deno.serve({
  hostname: "127.0.0.1",
  port: Number(portArg),
  automaticCompression: false,
  onListen() {},
}, async (request) => {
  const upstream = idle.pop() ?? await connect();
  try {
    const response = await exchange(upstream, request);
    idle.push(upstream);
    return response;
  } catch {
    upstream.conn.close();
    return new Response("bad gateway\n", { status: 502 });
  }
});
