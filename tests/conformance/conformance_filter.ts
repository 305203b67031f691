/**
 * The filter every way of running a filter is checked with (built in, by URL, in a
 * Worker, as a plugin, …). It uses `import type` only, so it runs anywhere.
 *
 * What it does, by request header:
 * - always: adds the request header `x-conformance` with `config.tag` (the effective
 *   config, so a route's per_filter_config shows through);
 * - `x-deny: 1`: answers 403 `denied by conformance filter` and stops;
 * - `x-upper-body: 1`: replaces the request body with its upper-cased text;
 * - `x-throw: 1`: throws;
 * - `x-meta: v`: stores v in metadata; the sender copies it to response header `x-meta`;
 * - always on the response: `x-created` / `x-destroyed` = how many filter instances
 *   this factory made / destroyed so far (each instance is destroyed exactly once).
 *
 * @module
 */

import type { CreateStreamFilterFactory, RequestStream, ResponseStream } from "../../mod.ts";

/** The conformance filter's factory. */
export const createStreamFilterFactory: CreateStreamFilterFactory = () => {
  let created = 0;
  let destroyed = 0;
  return {
    createFilterChain(chain) {
      created++;
      let alive = true;
      const filter = {
        async onReceive(s: RequestStream) {
          const tag = (s.config as { tag?: string } | undefined)?.tag ?? "none";
          s.headers.set("x-conformance", tag);
          if (s.headers.get("x-throw") === "1") throw new Error("conformance filter throws");
          if (s.headers.get("x-deny") === "1") {
            s.respond(403, { body: "denied by conformance filter" });
            return "stop" as const;
          }
          const meta = s.headers.get("x-meta");
          if (meta !== null) s.metadata.set("meta", meta);
          if (s.headers.get("x-upper-body") === "1") {
            const text = new TextDecoder().decode(await s.body());
            s.setBody(text.toUpperCase());
          }
          return "continue" as const;
        },
        append(s: ResponseStream) {
          const meta = s.metadata.get("meta");
          if (typeof meta === "string") s.headers.set("x-meta", meta);
          s.headers.set("x-created", String(created));
          s.headers.set("x-destroyed", String(destroyed));
          return "continue" as const;
        },
        onDestroy() {
          if (!alive) throw new Error("onDestroy called twice");
          alive = false;
          destroyed++;
        },
      };
      chain.addReceiver(filter, "before_route");
      chain.addSender(filter);
    },
  };
};
