// deno-lint-ignore-file -- AssemblyScript, compiled by asc, not by Deno
// A proxy-wasm filter in AssemblyScript, with `@gcoredev/proxy-wasm-sdk-as` (ABI 0.2.1).
//
// - every request gets the header `x-greeting` = the plugin configuration's "greeting";
// - a path under /admin is answered 403 `blocked by wasm` without reaching the upstream;
// - a path under /shout has its response body upper-cased;
// - every response gets `x-wasm: <the greeting>`.
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import {
  BufferTypeValues,
  Context,
  FilterDataStatusValues,
  FilterHeadersStatusValues,
  get_buffer_bytes,
  GrpcStatusValues,
  log,
  LogLevelValues,
  makeHeaderPair,
  registerRootContext,
  RootContext,
  send_local_response,
  set_buffer_bytes,
  stream_context,
} from "@gcoredev/proxy-wasm-sdk-as/assembly";

/** Reads "key":"value" from the flat JSON object MOSN makes of the plugin config. */
function field(json: string, key: string): string {
  const marker = '"' + key + '":"';
  const at = json.indexOf(marker);
  if (at < 0) return "";
  const start = at + marker.length;
  return json.substring(start, json.indexOf('"', start));
}

class ExampleRoot extends RootContext {
  greeting: string = "hello";

  onConfigure(size: u32): bool {
    super.onConfigure(size);
    const greeting = field(this.getConfiguration(), "greeting");
    if (greeting != "") this.greeting = greeting;
    log(LogLevelValues.info, "example filter configured, greeting " + this.greeting);
    return true;
  }

  createContext(context_id: u32): Context {
    return new ExampleStream(context_id, this);
  }
}

class ExampleStream extends Context {
  greeting: string;
  shout: bool = false;

  constructor(context_id: u32, root: ExampleRoot) {
    super(context_id, root);
    this.greeting = root.greeting;
  }

  onRequestHeaders(_n: u32, _end: bool): FilterHeadersStatusValues {
    const path = stream_context.headers.request.get(":path");
    if (path.startsWith("/admin")) {
      send_local_response(
        403,
        "blocked",
        String.UTF8.encode("blocked by wasm\n"),
        [makeHeaderPair("content-type", "text/plain")],
        GrpcStatusValues.Unknown,
      );
      return FilterHeadersStatusValues.StopIteration;
    }
    this.shout = path.startsWith("/shout");
    stream_context.headers.request.add("x-greeting", this.greeting);
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(_n: u32, _end: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-wasm", this.greeting);
    return FilterHeadersStatusValues.Continue;
  }

  onResponseBody(size: usize, end: bool): FilterDataStatusValues {
    if (!this.shout) return FilterDataStatusValues.Continue;
    if (!end) return FilterDataStatusValues.StopIterationAndBuffer;
    const body = String.UTF8.decode(
      get_buffer_bytes(BufferTypeValues.HttpResponseBody, 0, size as u32),
    );
    set_buffer_bytes(
      BufferTypeValues.HttpResponseBody,
      0,
      size as u32,
      String.UTF8.encode(body.toUpperCase()),
    );
    return FilterDataStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => new ExampleRoot(context_id), "example");
