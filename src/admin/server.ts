/**
 * The admin HTTP server: a small router on `Deno.serve`, loopback by default. Endpoints
 * are added with {@linkcode AdminServer.route}; MOSN's plugin endpoint is one of them.
 *
 * @module
 */

import { getLogger, type Logger } from "@logtape/logtape";

/** MOSN's default admin port. */
export const DEFAULT_ADMIN_PORT = 34901;

/** Handles one admin request. `url` is the parsed request URL. */
export type AdminHandler = (request: Request, url: URL) => Response | Promise<Response>;

/** How an endpoint is listed at `/` and guarded. */
export interface RouteOptions {
  /**
   * One line for the index at `/`.
   *
   * @default {""}
   */
  description?: string;
  /**
   * Whether a request changes the proxy: such a request must be a POST and, when the
   * server has a token, carry it as `Authorization: Bearer <token>`. A function decides
   * per request (the plugin endpoint reads with `?status=` and changes with `?enable=`).
   *
   * @default {false}
   */
  mutating?: boolean | ((url: URL) => boolean);
}

/** Options of {@linkcode AdminServer}. */
export interface AdminServerOptions {
  /**
   * The address to bind.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * The port to bind; 0 lets the OS choose.
   *
   * @default {34901}
   */
  port?: number;
  /**
   * The token mutating endpoints require (`Authorization: Bearer <token>`); none when
   * undefined.
   */
  token?: string;
  /**
   * The logger.
   *
   * @default {getLogger(["mosaic", "admin"])}
   */
  logger?: Logger;
}

/** Raised when the admin server is used wrongly or cannot listen. */
export class AdminServerError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AdminServerError";
  }
}

/** Answers plain text. */
export function text(status: number, body: string): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

/**
 * The admin server.
 *
 * @example
 * ```ts ignore
 * const admin = new AdminServer({ port: 0 });
 * admin.route("/api/v1/plugin", pluginAdminHandler(plugins));
 * const { port } = await admin.start();
 * await admin.stop();
 * ```
 */
export class AdminServer {
  readonly #routes = new Map<string, { handler: AdminHandler; options: RouteOptions }>();
  readonly #token: string | undefined;
  readonly #hostname: string;
  readonly #port: number;
  readonly #log: Logger;
  #server: Deno.HttpServer<Deno.NetAddr> | undefined;

  /** Creates the server; it listens on {@linkcode AdminServer.start}. */
  constructor(options: AdminServerOptions = {}) {
    this.#hostname = options.hostname ?? "127.0.0.1";
    this.#port = options.port ?? DEFAULT_ADMIN_PORT;
    this.#log = options.logger ?? getLogger(["mosaic", "admin"]);
    this.#token = options.token;
  }

  /**
   * Adds an endpoint at an exact path. Routes can be added before or after start.
   *
   * @param path The path, e.g. `/api/v1/plugin`.
   * @param handler The handler.
   * @param options Its line at `/`, and whether it changes the proxy.
   * @returns This server, for chaining.
   * @throws {AdminServerError} when the path does not start with `/` or is taken.
   */
  route(path: string, handler: AdminHandler, options: RouteOptions = {}): this {
    if (!path.startsWith("/")) {
      throw new AdminServerError(`Admin route "${path}" must start with "/"`);
    }
    if (this.#routes.has(path)) {
      throw new AdminServerError(`Admin route "${path}" is already taken`);
    }
    this.#routes.set(path, { handler, options });
    return this;
  }

  /** The paths served, in the order they were added. */
  routes(): string[] {
    return [...this.#routes.keys()];
  }

  /**
   * Starts listening.
   *
   * @returns The bound address (the real port when `port` was 0).
   * @throws {AdminServerError} when the address cannot be bound.
   */
  start(): Promise<{ hostname: string; port: number }> {
    if (this.#server) throw new AdminServerError("The admin server is already started");
    return new Promise((resolve, reject) => {
      try {
        this.#server = Deno.serve({
          hostname: this.#hostname,
          port: this.#port,
          onListen: (addr) => {
            this.#log.debug(`Admin API listening on http://${addr.hostname}:${addr.port}/`);
            resolve({ hostname: addr.hostname, port: addr.port });
          },
          onError: (err) => {
            this.#log.error("Admin request failed: {error}", { error: String(err) });
            return text(500, "Internal error\n");
          },
        }, (request) => this.#handle(request));
      } catch (err) {
        reject(
          new AdminServerError(
            `Admin API cannot listen on ${this.#hostname}:${this.#port}: ${(err as Error).message}`,
            { cause: err },
          ),
        );
      }
    });
  }

  /** The bound address, once started. */
  get addr(): { hostname: string; port: number } | undefined {
    const a = this.#server?.addr;
    return a ? { hostname: a.hostname, port: a.port } : undefined;
  }

  /** Stops listening and waits for open requests to finish. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server) await server.shutdown();
  }

  /** The index at `/`: every endpoint, its method and what it does. */
  index(): string {
    let out = "Mosaic admin API\n\n";
    for (const [path, { options }] of this.#routes) {
      const method = options.mutating === true
        ? "POST"
        : options.mutating === undefined || options.mutating === false
        ? "GET "
        : "GET/POST";
      out += `${method.padEnd(8)} ${path.padEnd(28)} ${options.description ?? ""}\n`;
    }
    if (this.#token !== undefined) out += "\nPOST requests need Authorization: Bearer <token>.\n";
    return out;
  }

  #handle(request: Request): Response | Promise<Response> {
    const url = new URL(request.url);
    const route = this.#routes.get(url.pathname);
    if (route === undefined) {
      if (url.pathname === "/") return text(200, this.index());
      return text(404, `No admin endpoint at ${url.pathname}; try: ${this.routes().join(", ")}\n`);
    }
    const mutating = route.options.mutating;
    if (mutating === true || (typeof mutating === "function" && mutating(url))) {
      if (request.method !== "POST") {
        return new Response(`${url.pathname} changes the proxy: use POST\n`, {
          status: 405,
          headers: { "content-type": "text/plain; charset=utf-8", allow: "POST" },
        });
      }
      if (this.#token !== undefined && !sameToken(request.headers, this.#token)) {
        this.#log.warn(`Admin ${url.pathname} refused: missing or wrong bearer token`);
        return new Response("Unauthorized: this endpoint needs the admin bearer token\n", {
          status: 401,
          headers: {
            "content-type": "text/plain; charset=utf-8",
            "www-authenticate": 'Bearer realm="mosaic-admin"',
          },
        });
      }
    }
    return route.handler(request, url);
  }
}

/** Compares the bearer token in constant time over its length. */
function sameToken(headers: Headers, token: string): boolean {
  const value = headers.get("authorization") ?? "";
  const given = value.startsWith("Bearer ") ? value.slice(7).trim() : "";
  if (given.length !== token.length) return false;
  let diff = 0;
  for (let i = 0; i < token.length; i++) diff |= given.charCodeAt(i) ^ token.charCodeAt(i);
  return diff === 0;
}
