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
  readonly #routes = new Map<string, AdminHandler>();
  readonly #hostname: string;
  readonly #port: number;
  readonly #log: Logger;
  #server: Deno.HttpServer<Deno.NetAddr> | undefined;

  /** Creates the server; it listens on {@linkcode AdminServer.start}. */
  constructor(options: AdminServerOptions = {}) {
    this.#hostname = options.hostname ?? "127.0.0.1";
    this.#port = options.port ?? DEFAULT_ADMIN_PORT;
    this.#log = options.logger ?? getLogger(["mosaic", "admin"]);
  }

  /**
   * Adds an endpoint at an exact path. Routes can be added before or after start.
   *
   * @param path The path, e.g. `/api/v1/plugin`.
   * @param handler The handler.
   * @returns This server, for chaining.
   * @throws {AdminServerError} when the path does not start with `/` or is taken.
   */
  route(path: string, handler: AdminHandler): this {
    if (!path.startsWith("/")) {
      throw new AdminServerError(`Admin route "${path}" must start with "/"`);
    }
    if (this.#routes.has(path)) {
      throw new AdminServerError(`Admin route "${path}" is already taken`);
    }
    this.#routes.set(path, handler);
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

  #handle(request: Request): Response | Promise<Response> {
    const url = new URL(request.url);
    const handler = this.#routes.get(url.pathname);
    if (handler === undefined) {
      return text(404, `No admin endpoint at ${url.pathname}; try: ${this.routes().join(", ")}\n`);
    }
    return handler(request, url);
  }
}
