/**
 * What a listener hands the stream lifecycle and what it gets back, independent of the
 * server that parsed the request: Mosaic's own HTTP/1.1 server, `Deno.serve` (HTTP/2, the
 * TLS bridge) or the in-process proxy. The lifecycle never sees a fetch `Request`, so a
 * server that parses the wire itself builds no URL and copies no headers.
 *
 * @module
 */

/** One request as it arrived. */
export interface DownstreamRequest {
  readonly method: string;
  /**
   * The request target as the client sent it: origin-form (`/path?query`), absolute-form
   * (`http://host/path`), authority-form (`host:port`, CONNECT) or `*`.
   */
  readonly target: string;
  /** The Host header (HTTP/1.1) or `:authority` (HTTP/2); null when the client sent none. */
  readonly authority: string | null;
  /** The request's header fields; the stream owns them and may change them. */
  readonly headers: Headers;
  /** The body, or null when the request has none. */
  readonly body: ReadableStream<Uint8Array> | null;
  /** Aborts when the client goes away before the response was delivered. */
  readonly signal: AbortSignal;
  /**
   * True when the server that parsed the request already left out its hop-by-hop fields
   * (and those its `Connection` names) and enforced the header size limit, as Mosaic's
   * own HTTP/1.1 server does while parsing: the lifecycle then skips both.
   */
  readonly sanitized?: boolean;
}

/** How the request reached the proxy. */
export interface DownstreamInfo {
  readonly remoteAddr: { readonly hostname: string; readonly port: number };
  /** `HTTP/1.1` or `HTTP/2`. */
  readonly protocol: string;
  /**
   * Settles when the response was delivered (or rejects when it could not be). Without
   * it (in-process runs) the body is wrapped to tell the end.
   */
  readonly completed?: Promise<void>;
}

/** The response the lifecycle wants written. */
export interface StreamResponse {
  readonly status: number;
  readonly headers: Headers;
  /** Bytes (written with Content-Length), a stream, or null for no body. */
  readonly body: Uint8Array | ReadableStream<Uint8Array> | null;
}

/**
 * Adapts a fetch `Request` (from `Deno.serve` or a test) to the lifecycle's input. The
 * headers are copied once, since Deno.serve's are immutable.
 *
 * The target is recovered from the URL without trusting it: over HTTP/1.1 Deno.serve
 * builds the URL by concatenating the scheme, the Host header *as sent* and the target
 * (or takes an absolute-form target as the URL), so when the URL starts with
 * `scheme://` + Host + `/`, the rest is exactly the target, whatever the Host holds
 * (`Host: a/admin` gives `http://a/admin/public`, target `/public`); the lifecycle then
 * refuses the invalid Host. Otherwise the URL is an absolute-form target, passed on as one.
 * Over HTTP/2 the URL is `scheme://` + `:authority` + `:path`.
 */
export function fromFetchRequest(request: Request, protocol: string): DownstreamRequest {
  const url = request.url;
  const headers = new Headers(request.headers);
  const authorityStart = url.indexOf("://") + 3;
  let target: string;
  let authority: string | null;
  if (protocol === "HTTP/2") {
    const pathStart = url.indexOf("/", authorityStart);
    authority = url.slice(authorityStart, pathStart === -1 ? url.length : pathStart);
    target = pathStart === -1 ? "/" : url.slice(pathStart);
  } else {
    authority = headers.get("host");
    const hostEnd = authority === null ? -1 : authorityStart + authority.length;
    if (
      authority !== null && authority !== "" && url.startsWith(authority, authorityStart) &&
      url.charCodeAt(hostEnd) === 0x2f /* / */
    ) {
      target = url.slice(hostEnd);
    } else if (authority === null || authority === "") {
      // Deno.serve put `localhost:PORT` in place of the missing Host: no "/" in it.
      const pathStart = url.indexOf("/", authorityStart);
      target = pathStart === -1 ? "/" : url.slice(pathStart);
    } else {
      target = url;
    }
  }
  return {
    method: request.method,
    target,
    authority,
    headers,
    body: request.body,
    signal: request.signal,
  };
}

/** Makes the fetch `Response` that `Deno.serve` writes. */
export function toFetchResponse(response: StreamResponse): Response {
  return new Response(response.body as BodyInit | null, {
    status: response.status,
    headers: response.headers,
  });
}
