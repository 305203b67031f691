/** A stream filter for Bolt requests: denies a service named in the config. */

import type { CreateStreamFilterFactory } from "../../mod.ts";

export const createStreamFilterFactory: CreateStreamFilterFactory = (config) => {
  const deny = (config as { deny?: string }).deny;
  return {
    createFilterChain(chain) {
      chain.addReceiver({
        onReceive(s) {
          if (s.headers.get("service") !== deny) return "continue";
          s.respond(403, { body: `service ${deny} is denied` });
          return "stop";
        },
      }, "before_route");
    },
  };
};
