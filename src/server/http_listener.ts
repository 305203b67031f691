/**
 * An HTTP listener: `Deno.serve` (HTTP/1.1, h2c with prior knowledge, h2 by ALPN over
 * TLS) handing every request to the stream lifecycle. The listener's context is a
 * field so a reload can swap routes, clusters and filters for new requests while
 * in-flight ones finish on the old.
 *
 * @module
 */

import { fromFetchRequest, toFetchResponse } from "../proxy/downstream.ts";
import { handleStream, type ListenerContext } from "../proxy/stream.ts";
import { isClientCancel } from "./h2_guard.ts";

/** Options of an HTTP listener. */
export interface HttpListenerOptions {
  hostname: string;
  port: number;
  /** PEM certificate and key, for TLS listeners. */
  tls?: { cert: string; key: string; alpnProtocols?: string[] };
  /** Share the port with another listener (needs `--unstable-net`). */
  reusePort?: boolean;
}

/** A running HTTP listener. */
export class HttpListener {
  /** What new requests are handled with. */
  context: ListenerContext;
  #server: Deno.HttpServer<Deno.NetAddr>;
  #inFlight = 0;
  #retiring = false;

  /** Starts listening at once; throws if the address cannot be bound. */
  constructor(options: HttpListenerOptions, context: ListenerContext) {
    this.context = context;
    const protocolOf = (request: Request) => request.headers.has("host") ? "HTTP/1.1" : "HTTP/2";
    this.#server = Deno.serve({
      hostname: options.hostname,
      port: options.port,
      reusePort: options.reusePort,
      // A proxy passes bodies and Content-Encoding through untouched.
      automaticCompression: false,
      ...(options.tls ?? {}),
      onListen: () => {},
      onError: (error) => {
        if (isClientCancel(error)) {
          // The client reset the stream or left mid-response: its choice, not a failure.
          this.context.logger.debug("Listener {listener}: a client cancelled a request", {
            listener: this.context.name,
          });
          return new Response(null, { status: 499 });
        }
        this.context.logger.error("Listener {listener} failed a request: {error}", {
          listener: this.context.name,
          error,
        });
        return new Response("internal error\n", { status: 500 });
      },
    }, (request, info) => {
      this.#inFlight++;
      const done = () => this.#inFlight--;
      const protocol = protocolOf(request);
      const response = handleStream(this.context, fromFetchRequest(request, protocol), {
        remoteAddr: info.remoteAddr,
        protocol,
        completed: info.completed,
      }).then(toFetchResponse);
      response.then(done, done);
      return this.#retiring && protocol === "HTTP/1.1" ? response.then(closeConnection) : response;
    });
  }

  /** The bound address (useful with port 0). */
  get addr(): Deno.NetAddr {
    return this.#server.addr;
  }

  /**
   * Asks HTTP/1.1 clients to leave before {@linkcode shutdown}: from now on every response
   * says `Connection: close`, so a busy keep-alive client reconnects (to the successor a
   * certificate rotation bound to the same port) rather than having its next request cut
   * off by the shutdown. HTTP/2 clients get a GOAWAY at shutdown, which they retry after.
   */
  retire(): void {
    this.#retiring = true;
  }

  /** Requests being handled now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Stops accepting, lets in-flight requests finish, and resolves when they did or
   * when `drainTimeoutMs` passed (remaining connections are then dropped).
   */
  async shutdown(drainTimeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, drainTimeoutMs);
    });
    await Promise.race([this.#server.shutdown(), timeout]);
    clearTimeout(timer);
  }
}

function closeConnection(response: Response): Response {
  try {
    response.headers.set("connection", "close");
    return response;
  } catch {
    // Immutable headers (a response made elsewhere): copy them.
    const headers = new Headers(response.headers);
    headers.set("connection", "close");
    return new Response(response.body, { status: response.status, headers });
  }
}
