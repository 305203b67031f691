/**
 * The request-side attack corpus: raw requests a hostile client sends, and what it must
 * get. Shared by the in-process corpus test and the end-to-end test through the real
 * proxy. A row passes when the status is one of `statuses` and the upstream saw the
 * request only as `upstream` says (`null`: never).
 *
 * The router of both tests: virtual host `b.example` (`/` → upstream, adding
 * `x-vhost: b`), and `*` with `/admin` → direct_response 403 and `/` → upstream.
 *
 * @module
 */

/** One hostile request. */
export interface AttackRow {
  name: string;
  /** The request line's target. */
  target: string;
  /** The Host header; null to send none. */
  host: string | null;
  /** Extra header lines. */
  headers?: Record<string, string>;
  /** Acceptable statuses. 403 is the deny route, 400 a refusal. */
  statuses: number[];
  /** The request line the upstream may see (`GET <path> HTTP/1.1`), or null for never. */
  upstream: string | null;
  /** The Host the upstream must see, when it sees the request. */
  upstreamHost?: string;
}

const DENIED = [400, 403];

/** Path traversals against the `/admin` deny route. */
export const TRAVERSALS: AttackRow[] = [
  "/public/../admin",
  "/./admin",
  "//admin",
  "/%61dmin",
  "/public/%2e%2e/admin",
  "/public%2f..%2fadmin",
  "/public%2F..%2Fadmin",
  "/public\\..\\admin",
  "/public/..;/admin",
  "/public/%2e%2e;/admin",
  "/public/..%5cadmin",
  "/public/..%5Cadmin",
  "/public/.%2e/admin",
  "///admin",
  "/admin/../admin",
].map((target) => ({
  name: `traversal ${target}`,
  target,
  host: "a",
  statuses: DENIED,
  upstream: null,
}));

/** Host header splicing and absolute-form targets. */
export const AUTHORITY: AttackRow[] = [
  { name: "Host with a path", target: "/public", host: "a/admin", statuses: [400], upstream: null },
  {
    name: "Host with a query and space",
    target: "/public",
    host: "a/x?q= y",
    statuses: [400],
    upstream: null,
  },
  { name: "empty Host", target: "/public", host: "", statuses: [400], upstream: null },
  { name: "Host with userinfo", target: "/public", host: "a@b", statuses: [400], upstream: null },
  {
    name: "Host with a bad port",
    target: "/public",
    host: "a:99999",
    statuses: [400],
    upstream: null,
  },
  { name: "no Host on HTTP/1.1", target: "/public", host: null, statuses: [400], upstream: null },
  {
    name: "absolute-form is routed by its authority",
    target: "http://b.example/x?y=1",
    host: "a",
    statuses: [200],
    upstream: "GET /x?y=1 HTTP/1.1",
    upstreamHost: "b.example",
  },
  {
    name: "absolute-form to the deny route",
    target: "http://a/admin",
    host: "b.example",
    statuses: DENIED,
    upstream: null,
  },
  {
    name: "a clean request is forwarded as sent",
    target: "/public/x?q=%2F..",
    host: "a",
    statuses: [200],
    upstream: "GET /public/x?q=%2F.. HTTP/1.1",
    upstreamHost: "a",
  },
  {
    name: "a normalized path is forwarded normalized",
    target: "/public/./x//y/../z",
    host: "a",
    statuses: [200],
    upstream: "GET /public/x/z HTTP/1.1",
    upstreamHost: "a",
  },
];

/** Writes a request as raw bytes. */
export function rawRequest(row: AttackRow): string {
  let text = `GET ${row.target} HTTP/1.1\r\n`;
  if (row.host !== null) text += `Host: ${row.host}\r\n`;
  for (const [name, value] of Object.entries(row.headers ?? {})) text += `${name}: ${value}\r\n`;
  return text + "Connection: close\r\n\r\n";
}
