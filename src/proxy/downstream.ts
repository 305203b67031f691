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
 * headers are copied once, since Deno.serve's are immutable. The target is the URL's
 * path and query: Deno.serve builds the URL from the authority and the target, so
 * what follows the authority is the target as sent, once the authority was checked.
 */
export function fromFetchRequest(request: Request, protocol: string): DownstreamRequest {
  const url = request.url;
  const authorityStart = url.indexOf("//") + 2;
  const pathStart = url.indexOf("/", authorityStart);
  const urlAuthority = url.slice(authorityStart, pathStart === -1 ? url.length : pathStart);
  const headers = new Headers(request.headers);
  const hostHeader = headers.get("host");
  return {
    method: request.method,
    target: pathStart === -1 ? "/" : url.slice(pathStart),
    authority: protocol === "HTTP/2" ? urlAuthority : hostHeader,
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
