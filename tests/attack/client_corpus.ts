/**
 * The server-level client attack corpus: raw bytes a hostile or broken client sends to a
 * plain HTTP listener, the status line it must get (or that the connection closes), and
 * what the upstream may see. Framing cases: a proxy that reads a request's length one way
 * while its upstream reads it another is how requests are smuggled, so every ambiguity is
 * refused with 400 (and the connection closed), never guessed.
 *
 * The router of the test: `/direct` → direct_response 200 (the proxy answers without
 * reading the body), everything else → the upstream, which answers
 * `<method> <path> <body length>`.
 *
 * @module
 */

/** One hostile exchange. */
export interface ClientAttackRow {
  name: string;
  /** The bytes sent (one char per byte). */
  send: string;
  /** The status lines the client must get, in order (a prefix such as `HTTP/1.1 400`). */
  expect: string[];
  /** The proxy closes the connection after them. */
  closes: boolean;
  /** What the upstream must have seen (`<method> <path> <body length>` per request). */
  upstream: string[];
  /** The body the client must get in the last response, when it matters. */
  bodyIncludes?: string;
}

const H = "Host: a\r\n";

/** Heads the parser must refuse. */
export const HEAD_ROWS: ClientAttackRow[] = [
  {
    name: "Transfer-Encoding and Content-Length together",
    send: `POST / HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    expect: ["HTTP/1.1 400"],
    closes: true,
    upstream: [],
  },
  {
    name: "two Content-Length fields that differ",
    send: `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`,
    expect: ["HTTP/1.1 400"],
    closes: true,
    upstream: [],
  },
  {
    name: "two equal Content-Length fields",
    send: `POST / HTTP/1.1\r\n${H}Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd`,
    expect: ["HTTP/1.1 400"],
    closes: true,
    upstream: [],
  },
  {
    name: "a Content-Length list",
    send: `POST / HTTP/1.1\r\n${H}Content-Length: 4, 4\r\n\r\nabcd`,
    expect: ["HTTP/1.1 400"],
    closes: true,
    upstream: [],
  },
  {
    name: "a signed Content-Length",
    send: `POST / HTTP/1.1\r\n${H}Content-Length: +4\r\n\r\nabcd`,
    expect: ["HTTP/1.1 400"],
    closes: true,
    upstream: [],
  },
  {
    name: "Transfer-Encoding whose last coding is not chunked",
    send: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`,
    expect: ["HTTP/1.1 400"],
    closes: true,
    upstream: [],
  },
  {
    name: "Transfer-Encoding with a coding before chunked",
    send: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
    expect: ["HTTP/1.1 501"],
    closes: true,
    upstream: [],
  },
  {
    name: "Transfer-Encoding chunked twice",
    send:
      `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    expect: ["HTTP/1.1 501"],
    closes: true,
    upstream: [],
  },
  {
    name: "a Transfer-Encoding that only looks like chunked",
    send: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`,
    expect: ["HTTP/1.1 400"],
    closes: true,
    upstream: [],
  },
  {
    name: "Transfer-Encoding in HTTP/1.0",
    send: `POST / HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    expect: ["HTTP/1.1 400"],
    closes: true,
    upstream: [],
  },
  {
    name: "obs-fold",
    send: `GET / HTTP/1.1\r\n${H}X-A: 1\r\n  folded\r\n\r\n`,
    expect: ["HTTP/1.1 400"],
    closes: true,
    upstream: [],
  },
  {
    name: "whitespace before the colon",
    send: `GET / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`,
    expect: ["HTTP/1.1 400"],
    closes: true,
    upstream: [],
  },
  {
    name: "a field name with a character that is not a token",
    send: `GET / HTTP/1.1\r\n${H}X[A]: 1\r\n\r\n`,
    expect: ["HTTP/1.1 400"],
    closes: true,
    upstream: [],
  },
  {
    name: "a NUL in a field value",
    send: `GET / HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`,
    expect: ["HTTP/1.1 400"],
    closes: true,
    upstream: [],
  },
  {
    name: "a bare CR in a field value",
    send: `GET / HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n`,
    expect: ["HTTP/1.1 400"],
    closes: true,
    upstream: [],
  },
  {
    name: "bare LF line ends in the head",
    send: "GET / HTTP/1.1\nHost: a\n\n",
    expect: ["HTTP/1.1 400"],
    closes: true,
    upstream: [],
  },
  {
    name: "two Host fields",
    send: `GET / HTTP/1.1\r\n${H}Host: b\r\n\r\n`,
    expect: ["HTTP/1.1 400"],
    closes: true,
    upstream: [],
  },
  {
    name: "a tab in the request line",
    send: `GET\t/ HTTP/1.1\r\n${H}\r\n`,
    expect: ["HTTP/1.1 400"],
    closes: true,
    upstream: [],
  },
  {
    name: "a space inside the target",
    send: `GET /a b HTTP/1.1\r\n${H}\r\n`,
    expect: ["HTTP/1.1 400"],
    closes: true,
    upstream: [],
  },
  {
    name: "an unknown HTTP version",
    send: `GET / HTTP/1.2\r\n${H}\r\n`,
    expect: ["HTTP/1.1 505"],
    closes: true,
    upstream: [],
  },
  {
    name: "a request line too long",
    send: `GET /${"a".repeat(20_000)} HTTP/1.1\r\n${H}\r\n`,
    expect: ["HTTP/1.1 414"],
    closes: true,
    upstream: [],
  },
  {
    name: "a header block too large",
    send: `GET / HTTP/1.1\r\n${H}${"X-Big: " + "b".repeat(8000) + "\r\n".repeat(1)}`.repeat(1) +
      `${"X-Pad: " + "p".repeat(1000) + "\r\n"}`.repeat(60) + "\r\n",
    expect: ["HTTP/1.1 431"],
    closes: true,
    upstream: [],
  },
];

/** Chunked bodies the body reader must refuse, with 400 and a close, never a hang. */
export const CHUNKED_ROWS: ClientAttackRow[] = [
  ["a chunk size that is not hex", "zz\r\nhello\r\n0\r\n\r\n"],
  ["a chunk size with a space before it", " 5\r\nhello\r\n0\r\n\r\n"],
  ["a negative chunk size", "-5\r\nhello\r\n0\r\n\r\n"],
  ["a chunk size past 2^52", "fffffffffffffffff\r\nhello\r\n0\r\n\r\n"],
  ["a chunk size followed by junk", "5 x\r\nhello\r\n0\r\n\r\n"],
  ["bare LF line ends in a chunked body", "5\nhello\n0\n\n"],
  ["chunk data longer than its size", "3\r\nhello\r\n0\r\n\r\n"],
  ["a bare LF after the last chunk's trailers", "5\r\nhello\r\n0\r\n\n"],
].map(([name, body]) => ({
  name,
  send: `POST /up HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${body}`,
  expect: ["HTTP/1.1 400"],
  closes: true,
  // The upstream may have started to receive the body; it never gets a complete request.
  upstream: [],
}));

/** Requests that must be served, and serve the next request on the connection right. */
export const GOOD_ROWS: ClientAttackRow[] = [
  {
    name: "a GET with a body gives the body to the upstream",
    send: `GET /get HTTP/1.1\r\n${H}Content-Length: 5\r\nConnection: close\r\n\r\nhello`,
    expect: ["HTTP/1.1 200"],
    closes: true,
    upstream: ["GET /get 5"],
  },
  {
    name: "a chunked body with extensions and trailers",
    send: `POST /c HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
      "5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    expect: ["HTTP/1.1 200"],
    closes: true,
    upstream: ["POST /c 11"],
  },
  {
    name: "an early response does not lose the next pipelined request",
    send: `POST /direct HTTP/1.1\r\n${H}Content-Length: 10\r\n\r\n0123456789` +
      `GET /after HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
    expect: ["HTTP/1.1 200", "HTTP/1.1 200"],
    closes: true,
    upstream: ["GET /after 0"],
  },
  {
    name: "an early response to a chunked body does not lose the next request",
    send: `POST /direct HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n` +
      `GET /after HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
    expect: ["HTTP/1.1 200", "HTTP/1.1 200"],
    closes: true,
    upstream: ["GET /after 0"],
  },
  {
    name: "pipelined requests are answered in order",
    send: `GET /1 HTTP/1.1\r\n${H}\r\nPOST /2 HTTP/1.1\r\n${H}Content-Length: 2\r\n\r\nhi` +
      `GET /3 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
    expect: ["HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 200"],
    closes: true,
    upstream: ["GET /1 0", "POST /2 2", "GET /3 0"],
    bodyIncludes: "GET /3 0",
  },
  {
    name: "empty lines before a request line are ignored",
    send: `\r\n\r\nGET /e HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
    expect: ["HTTP/1.1 200"],
    closes: true,
    upstream: ["GET /e 0"],
  },
  {
    name: "HTTP/1.0 without keep-alive closes after the response",
    send: `GET /ten HTTP/1.0\r\n${H}\r\n`,
    expect: ["HTTP/1.1 200"],
    closes: true,
    upstream: ["GET /ten 0"],
  },
  {
    name: "an Upgrade request is answered as an ordinary request",
    send: `GET /ws HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n` +
      `GET /next HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
    expect: ["HTTP/1.1 200", "HTTP/1.1 200"],
    closes: true,
    upstream: ["GET /ws 0", "GET /next 0"],
  },
  {
    name: "the h2c preface on an ordinary request line is not HTTP/1.1",
    send: `GET / HTTP/2.0\r\n${H}\r\n`,
    expect: ["HTTP/1.1 505"],
    closes: true,
    upstream: [],
  },
];
