/**
 * The guest: the filter side of every out-of-process runtime, the same code in a Worker
 * and in a child process. It speaks the supervisor's protocol through
 * `globalThis.postMessage`/`onmessage`, which a Worker has and the process runner
 * (`../process/runner.ts`) provides over pipes.
 *
 * A Worker does not import this module: {@linkcode sandboxWorkerMain}'s source text is
 * put in the Worker's entry script (a `data:` URL that statically imports the filter
 * module, see `../worker/entry.ts`), so the Worker reads nothing from disk but the filter
 * module and needs no read grant on Mosaic's own files (a Worker's static imports are
 * checked against the process's `--allow-read`, which under narrow flags does not cover
 * Mosaic's folder). That is why the function is self-contained: it may use nothing from
 * its own module but types.
 *
 * In the guest, a filter sees the same `RequestStream`/`ResponseStream` as in process:
 * headers, path, metadata, config, route, host and logger come with each call; `body()`
 * and plugin calls ask the host when the filter makes them; changes go back with the
 * call's answer.
 *
 * @module
 */

import type {
  FilterChain,
  FilterLogger,
  FilterStatus,
  HostInfo,
  ReceivePhase,
  ReceiverFilter,
  RequestStream,
  RequestView,
  RespondInit,
  ResponseStream,
  RouteInfo,
  SenderFilter,
  StreamFilterFactory,
} from "../../contract/filter.ts";
import type {
  DoneMessage,
  GuestMessage,
  GuestRequest,
  HostMessage,
  InitMessage,
  MetadataDiff,
  ReceiveMessage,
  RemoteError,
  SendMessage,
} from "../supervisor/protocol.ts";

/**
 * Runs in the Worker once the filter module is imported: reports its exports, makes the
 * factory on `init`, then serves calls until terminated.
 *
 * @param namespace The filter module's namespace.
 * @param exportName The factory's export name.
 */
export function sandboxWorkerMain(namespace: Record<string, unknown>, exportName: string): void {
  // Constants are repeated here: this function's source is all the Worker gets.
  const SHAPE: Record<ReceivePhase, number> = {
    before_route: 1,
    after_route: 2,
    after_choose_host: 4,
  };
  const SHAPE_SENDER = 8;
  const SHAPE_DESTROY = 16;
  const encoder = new TextEncoder();
  const scope = globalThis as unknown as {
    postMessage(message: GuestMessage[], transfer?: Transferable[]): void;
    onmessage: ((event: MessageEvent<HostMessage[]>) => void) | null;
    addEventListener(type: string, listener: (event: Event) => void): void;
  };

  // Everything posted in one turn goes in one message (see the host's `#post`).
  let outbox: GuestMessage[] = [];

  function post(message: GuestMessage): void {
    if (outbox.push(message) === 1) queueMicrotask(flush);
  }

  /**
   * Bodies the guest made itself (from a string): their buffers are moved to the host,
   * not copied. A filter's own `Uint8Array` is copied: it may use it again.
   */
  const owned = new WeakSet<Uint8Array>();

  function transferable(batch: GuestMessage[]): ArrayBuffer[] {
    const moved: ArrayBuffer[] = [];
    const add = (bytes: Uint8Array | undefined) => {
      if (bytes === undefined || !owned.has(bytes)) return;
      owned.delete(bytes);
      const buffer = bytes.buffer as ArrayBuffer;
      if (bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength) moved.push(buffer);
    };
    for (const message of batch) {
      if (message.t !== "done") continue;
      add(message.body);
      add(message.respond?.[2]);
    }
    return moved;
  }

  function flush(): void {
    const batch = outbox;
    outbox = [];
    try {
      scope.postMessage(batch, transferable(batch));
    } catch {
      for (const message of batch) postAlone(message);
    }
  }

  /** Posts one message of a batch that could not be copied as a whole. */
  function postAlone(message: GuestMessage): void {
    try {
      scope.postMessage([message]);
    } catch (error) {
      // A value the filter put in metadata or a log line's properties cannot be copied.
      if (message.t === "done") {
        scope.postMessage([{ t: "failed", id: message.id, error: remoteError(error) }]);
      } else if (message.t === "log" && message.properties !== undefined) {
        scope.postMessage([{ ...message, properties: undefined }]);
      } else throw error;
    }
  }

  function remoteError(error: unknown): RemoteError {
    if (error instanceof Error) {
      return { name: error.name, message: error.message, stack: error.stack };
    }
    return { name: "Error", message: String(error) };
  }

  function toBytes(body: string | Uint8Array): Uint8Array {
    if (typeof body !== "string") return body;
    const bytes = encoder.encode(body);
    owned.add(bytes);
    return bytes;
  }

  function checkStatus(status: number, what: string): void {
    if (!Number.isInteger(status) || status < 200 || status > 999) {
      throw new RangeError(`${what} needs a status from 200 to 999, got ${status}`);
    }
  }

  // Stray errors of a filter (a timer callback that throws) must not end the Worker.
  scope.addEventListener("error", (event) => {
    event.preventDefault();
    const error = (event as ErrorEvent).error;
    log("error", `Uncaught error in the sandbox: ${remoteError(error).message}`, undefined);
  });
  scope.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    const reason = (event as PromiseRejectionEvent).reason;
    log("error", `Unhandled rejection in the sandbox: ${remoteError(reason).message}`, undefined);
  });

  function log(
    level: "debug" | "info" | "warn" | "error",
    message: string,
    properties: Record<string, unknown> | undefined,
  ): void {
    post({ t: "log", level, message: String(message), properties });
  }

  const logger: FilterLogger = {
    debug: (message, properties) => log("debug", message, properties),
    info: (message, properties) => log("info", message, properties),
    warn: (message, properties) => log("warn", message, properties),
    error: (message, properties) => log("error", message, properties),
  };

  // Requests to the host (body reads, plugin calls), answered by `reply` messages.
  let nextRequest = 0;
  const waiting = new Map<number, PromiseWithResolvers<unknown>>();

  type Ask = GuestRequest extends infer R ? R extends unknown ? Omit<R, "id"> : never : never;
  function ask(message: Ask): Promise<unknown> {
    const id = ++nextRequest;
    const pending = Promise.withResolvers<unknown>();
    waiting.set(id, pending);
    post({ ...message, id } as GuestMessage);
    return pending.promise;
  }

  /** Headers that remember whether a filter changed them. */
  class TrackedHeaders extends Headers {
    changed = false;
    override set(name: string, value: string): void {
      super.set(name, value);
      this.changed = true;
    }
    override append(name: string, value: string): void {
      super.append(name, value);
      this.changed = true;
    }
    override delete(name: string): void {
      super.delete(name);
      this.changed = true;
    }
  }

  /** Metadata that records what a filter set and deleted. */
  class TrackedMap extends Map<string, unknown> {
    diff: MetadataDiff | undefined;
    load(entries: [string, unknown][] | undefined): this {
      if (entries !== undefined) {
        for (const [key, value] of entries) Map.prototype.set.call(this, key, value);
      }
      return this;
    }
    override set(key: string, value: unknown): this {
      super.set(key, value);
      this.#changes().set.push([key, value]);
      return this;
    }
    override delete(key: string): boolean {
      const had = super.delete(key);
      this.#changes().del.push(key);
      return had;
    }
    override clear(): void {
      for (const key of this.keys()) this.#changes().del.push(key);
      super.clear();
    }
    #changes(): MetadataDiff {
      return this.diff ??= { set: [], del: [] };
    }
  }

  /** Reduces a sequence of sets and deletes to the final state of each key. */
  function finalDiff(map: TrackedMap): MetadataDiff | undefined {
    if (map.diff === undefined) return undefined;
    const keys = new Set([...map.diff.set.map(([key]) => key), ...map.diff.del]);
    const out: MetadataDiff = { set: [], del: [] };
    for (const key of keys) {
      if (map.has(key)) out.set.push([key, map.get(key)]);
      else out.del.push(key);
    }
    return out;
  }

  let filterName = "";
  let factoryConfig: unknown;
  let factory: StreamFilterFactory | undefined;
  let factoryReady: Promise<void> | undefined;

  function routeOf(message: ReceiveMessage | SendMessage): RouteInfo | undefined {
    const route = message.route;
    if (route === undefined) return undefined;
    return {
      name: route[0],
      clusterName: route[1],
      virtualHost: route[2],
      perFilterConfig: (name: string) => name === filterName ? route[3] : undefined,
    };
  }

  function hostOf(message: ReceiveMessage | SendMessage): HostInfo | undefined {
    const host = message.host;
    return host === undefined ? undefined : { address: host[0], cluster: host[1], weight: host[2] };
  }

  /** A body read on demand: asked of the host once per call, or the replacement. */
  class Body {
    replaced: Uint8Array | undefined;
    #read: Promise<Uint8Array> | undefined;
    constructor(readonly call: number) {}
    bytes(options?: { maxBytes?: number }): Promise<Uint8Array> {
      if (this.replaced !== undefined) return Promise.resolve(this.replaced);
      return this.#read ??= ask({
        t: "request",
        call: this.call,
        kind: "body",
        maxBytes: options?.maxBytes,
      }) as Promise<Uint8Array>;
    }
  }

  class GuestRequestStream implements RequestStream {
    readonly phase: ReceivePhase;
    readonly method: string;
    readonly headers: TrackedHeaders;
    readonly remoteAddr: { readonly hostname: string; readonly port: number };
    readonly metadata: TrackedMap;
    readonly route: RouteInfo | undefined;
    readonly host: HostInfo | undefined;
    readonly logger = logger;
    readonly config: unknown;
    readonly content: Body;
    pathChanged = false;
    local: DoneMessage["respond"];
    #path: string;
    #responded: boolean;

    constructor(message: ReceiveMessage) {
      this.phase = message.phase;
      this.method = message.method;
      this.#path = message.path;
      this.headers = new TrackedHeaders(message.headers);
      this.headers.changed = false;
      this.remoteAddr = { hostname: message.remote[0], port: message.remote[1] };
      this.metadata = new TrackedMap().load(message.meta);
      this.route = routeOf(message);
      this.host = hostOf(message);
      this.config = message.same ? factoryConfig : message.config;
      this.content = new Body(message.id);
      this.#responded = message.responded;
    }
    get path(): string {
      return this.#path;
    }
    set path(value: string) {
      this.#path = String(value);
      this.pathChanged = true;
    }
    get responded(): boolean {
      return this.#responded;
    }
    body(options?: { maxBytes?: number }): Promise<Uint8Array> {
      return this.content.bytes(options);
    }
    setBody(body: string | Uint8Array): void {
      this.content.replaced = toBytes(body);
    }
    respond(status: number, init?: RespondInit): void {
      checkStatus(status, "respond()");
      const headers = init?.headers === undefined ? undefined : [...new Headers(init.headers)];
      const body = init?.body === undefined ? undefined : toBytes(init.body);
      this.local = [status, headers, body];
      this.#responded = true;
    }
  }

  class WorkerResponseStream implements ResponseStream {
    readonly phase = "before_send" as const;
    readonly headers: TrackedHeaders;
    readonly request: RequestView;
    readonly metadata: TrackedMap;
    readonly route: RouteInfo | undefined;
    readonly host: HostInfo | undefined;
    readonly local: boolean;
    readonly logger = logger;
    readonly config: unknown;
    readonly content: Body;
    statusChanged = false;
    #status: number;

    constructor(message: SendMessage) {
      this.#status = message.status;
      this.headers = new TrackedHeaders(message.headers);
      this.headers.changed = false;
      const [method, path, headers, hostname, port] = message.request;
      this.request = {
        method,
        path,
        headers: new Headers(headers),
        remoteAddr: { hostname, port },
      };
      this.metadata = new TrackedMap().load(message.meta);
      this.route = routeOf(message);
      this.host = hostOf(message);
      this.local = message.local;
      this.config = message.same ? factoryConfig : message.config;
      this.content = new Body(message.id);
    }
    get status(): number {
      return this.#status;
    }
    set status(value: number) {
      checkStatus(value, "A response");
      this.#status = value;
      this.statusChanged = true;
    }
    body(options?: { maxBytes?: number }): Promise<Uint8Array> {
      return this.content.bytes(options);
    }
    setBody(body: string | Uint8Array): void {
      this.content.replaced = toBytes(body);
    }
  }

  /** One stream's filter instances, made on the stream's first call. */
  interface Instances {
    receivers: { filter: ReceiverFilter; phase: ReceivePhase }[];
    senders: SenderFilter[];
    destroyable: { onDestroy?(): void }[];
    shape: number;
  }

  const streams = new Map<number, Instances>();

  function instancesOf(sid: number): { instances: Instances; fresh: boolean } {
    const existing = streams.get(sid);
    if (existing !== undefined) return { instances: existing, fresh: false };
    if (factory === undefined) throw new Error("The sandboxed filter's factory did not start");
    const instances: Instances = { receivers: [], senders: [], destroyable: [], shape: 0 };
    let adding = true;
    const track = (filter: { onDestroy?(): void }) => {
      if (typeof filter.onDestroy === "function" && !instances.destroyable.includes(filter)) {
        instances.destroyable.push(filter);
      }
    };
    const chain: FilterChain = {
      addReceiver(filter, phase) {
        if (!adding) throw new Error("Filters can only be added while createFilterChain runs");
        if (SHAPE[phase] === undefined) {
          throw new Error(`Filter "${filterName}" added a receiver for unknown phase "${phase}"`);
        }
        instances.receivers.push({ filter, phase });
        instances.shape |= SHAPE[phase];
        track(filter);
      },
      addSender(filter) {
        if (!adding) throw new Error("Filters can only be added while createFilterChain runs");
        instances.senders.push(filter);
        instances.shape |= SHAPE_SENDER;
        track(filter);
      },
    };
    factory.createFilterChain(chain);
    adding = false;
    if (instances.destroyable.length > 0) instances.shape |= SHAPE_DESTROY;
    streams.set(sid, instances);
    return { instances, fresh: true };
  }

  /**
   * Forgets a stream after its last call when it has nothing to destroy: the host then
   * sends no `destroy` (one message less per request). Streams that end early, or whose
   * last call failed, are destroyed by the host.
   */
  function settle(sid: number, instances: Instances, bit: number): void {
    if ((instances.shape & SHAPE_DESTROY) !== 0) return;
    const calls = instances.shape & 15;
    if (calls === 0 || bit === 1 << (31 - Math.clz32(calls))) streams.delete(sid);
  }

  async function receive(message: ReceiveMessage): Promise<void> {
    if (factory === undefined) await factoryReady;
    const { instances, fresh } = instancesOf(message.sid);
    const stream = new GuestRequestStream(message);
    let status: FilterStatus = "continue";
    for (const { filter, phase } of instances.receivers) {
      if (phase !== message.phase) continue;
      status = await filter.onReceive(stream);
      if (status !== "continue") break;
    }
    const done: DoneMessage = { t: "done", id: message.id, status };
    if (fresh) done.shape = instances.shape;
    if (stream.headers.changed) done.headers = [...stream.headers];
    if (stream.pathChanged) done.path = stream.path;
    if (stream.content.replaced !== undefined) done.body = stream.content.replaced;
    if (stream.local !== undefined) done.respond = stream.local;
    const meta = finalDiff(stream.metadata);
    if (meta !== undefined) done.meta = meta;
    settle(message.sid, instances, SHAPE[message.phase]);
    post(done);
  }

  async function send(message: SendMessage): Promise<void> {
    if (factory === undefined) await factoryReady;
    const { instances, fresh } = instancesOf(message.sid);
    const stream = new WorkerResponseStream(message);
    let status: FilterStatus = "continue";
    for (const filter of instances.senders) {
      status = await filter.append(stream);
      if (status === "stop") break;
    }
    const done: DoneMessage = { t: "done", id: message.id, status };
    if (fresh) done.shape = instances.shape;
    if (stream.headers.changed) done.headers = [...stream.headers];
    if (stream.statusChanged) done.rstatus = stream.status;
    if (stream.content.replaced !== undefined) done.body = stream.content.replaced;
    const meta = finalDiff(stream.metadata);
    if (meta !== undefined) done.meta = meta;
    settle(message.sid, instances, SHAPE_SENDER);
    post(done);
  }

  function destroy(sid: number): void {
    const instances = streams.get(sid);
    if (instances === undefined) return;
    streams.delete(sid);
    for (const instance of instances.destroyable) {
      try {
        instance.onDestroy!();
      } catch (error) {
        logger.error(`onDestroy threw: ${remoteError(error).message}`);
      }
    }
  }

  async function init(message: InitMessage): Promise<void> {
    filterName = message.name;
    factoryConfig = message.config;
    const create = namespace[exportName] as (config: unknown, context: unknown) => unknown;
    const context = {
      name: message.name,
      listener: message.listener,
      configFile: message.configFile,
      logger,
      plugins: {
        call: (name: string, request: unknown, options?: { timeoutMs?: number }) =>
          ask({
            t: "request",
            call: 0,
            kind: "plugin",
            name,
            request,
            timeoutMs: options?.timeoutMs,
          }),
      },
    };
    try {
      const made = await create(message.config, context);
      if (
        made === null || typeof made !== "object" ||
        typeof (made as StreamFilterFactory).createFilterChain !== "function"
      ) {
        const kind = made === null ? "null" : Array.isArray(made) ? "an array" : typeof made;
        throw new TypeError(
          `the factory returned ${
            kind === "object" ? "an object without createFilterChain" : kind
          }, expected an object with a createFilterChain(chain) method`,
        );
      }
      factory = made as StreamFilterFactory;
      post({ t: "ready" });
    } catch (error) {
      post({ t: "init_failed", error: remoteError(error) });
    }
  }

  function fail(id: number, error: unknown): void {
    post({ t: "failed", id, error: remoteError(error) });
  }

  scope.onmessage = (event) => {
    for (const message of event.data) handle(message);
  };

  function handle(message: HostMessage): void {
    switch (message.t) {
      case "receive":
        receive(message).catch((error) => fail(message.id, error));
        break;
      case "send":
        send(message).catch((error) => fail(message.id, error));
        break;
      case "reply": {
        const pending = waiting.get(message.id);
        if (pending === undefined) break;
        waiting.delete(message.id);
        if (message.ok) pending.resolve(message.value);
        else {
          const error = new Error(message.error!.message);
          error.name = message.error!.name;
          pending.reject(error);
        }
        break;
      }
      case "destroy":
        destroy(message.sid);
        break;
      case "ping":
        post({ t: "pong", id: message.id });
        break;
      case "init":
        factoryReady = init(message);
        break;
      case "close": {
        for (const sid of [...streams.keys()]) destroy(sid);
        Promise.resolve(factory?.destroy?.()).catch((error) => {
          logger.error(`The factory's destroy() failed: ${remoteError(error).message}`);
        }).finally(() => post({ t: "closed", id: message.id }));
        break;
      }
    }
  }

  const exported = namespace[exportName];
  post({ t: "loaded", exports: Object.keys(namespace), kind: typeof exported });
}
