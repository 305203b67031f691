/**
 * Asks a reputation service whether the request's `User` may pass: `GET
 * <service>?user=<User>` answering `allow` or `deny`. Run in a sandbox, the filter can
 * reach the service only if its `sandbox.permissions.net` lists it; without that grant
 * its `fetch` throws Deno's `NotCapable`, and the request follows the filter's
 * `failure_mode`.
 *
 * ```yaml
 * stream_filters:
 *   - type: module
 *     module: ./reputation_filter.ts
 *     sandbox: { permissions: { net: ["127.0.0.1:8802"] }, timeout: 1s }
 *     config: { service: "http://127.0.0.1:8802/check" }
 * ```
 *
 * @module
 */

import type { CreateStreamFilterFactory, RequestStream } from "../../mod.ts";

/** The factory: validates `config.service` once, then checks every request. */
export const createStreamFilterFactory: CreateStreamFilterFactory = (config, context) => {
  const service = (config as { service?: unknown } | null)?.service;
  if (typeof service !== "string" || !URL.canParse(service)) {
    throw new TypeError("reputation_filter: config.service must be a URL");
  }
  context.logger.info(`Asking ${service} about every user`);
  return {
    createFilterChain(chain) {
      chain.addReceiver({
        async onReceive(stream: RequestStream) {
          const url = new URL(service);
          url.searchParams.set("user", stream.headers.get("user") ?? "");
          // Denied a net grant, this throws NotCapable; the chain applies failure_mode.
          const verdict = (await (await fetch(url)).text()).trim();
          stream.headers.set("x-reputation", verdict);
          if (verdict === "allow") return "continue";
          stream.respond(403, { body: "Forbidden by the reputation service\n" });
          return "stop";
        },
      }, "before_route");
    },
  };
};
