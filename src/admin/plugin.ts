/**
 * MOSN's plugin admin endpoint: `?status=all`, `?status=<name>`, `?enable=<name>`,
 * `?disable=<name>`, answered in MOSN's words (`name:x,enable:true,on:true`).
 *
 * @module
 */

import type { PluginStatus } from "../plugin/manager.ts";
import { type AdminHandler, text } from "./server.ts";

/** The path Mosaic serves the plugin endpoint at. */
export const PLUGIN_ADMIN_PATH = "/api/v1/plugin";

/** What the endpoint needs of the plugin manager. */
export interface PluginAdmin {
  /** Every plugin's status. */
  status(): PluginStatus[];
  /** One plugin's status. */
  status(name: string): PluginStatus | undefined;
  /** Enables and starts a plugin. */
  enable(name: string): Promise<void>;
  /** Stops and disables a plugin. */
  disable(name: string): Promise<void>;
}

function line(s: PluginStatus): string {
  return `name:${s.name},enable:${s.enabled},on:${s.on}`;
}

/** MOSN's usage text, for a request that asks nothing. */
export function pluginUsage(path = PLUGIN_ADMIN_PATH): string {
  return `Usage:\n${path}?status=all\n${path}?status=pluginname\n` +
    `${path}?enable=pluginname\n${path}?disable=pluginname\n`;
}

/**
 * Makes the handler of MOSN's plugin endpoint.
 *
 * Answers 200 with `enable <name> success`, `disable <name> success`, or status lines;
 * 400 with the error for an unknown plugin or a failed start, and 400 with the usage
 * text when no known query parameter is given (as MOSN does).
 *
 * @param plugins The plugin manager.
 * @param path The path shown in the usage text.
 * @returns The handler.
 */
export function pluginAdminHandler(
  plugins: PluginAdmin,
  path: string = PLUGIN_ADMIN_PATH,
): AdminHandler {
  return async (_request, url) => {
    const query = url.searchParams;
    const enable = query.get("enable");
    const disable = query.get("disable");
    const status = query.get("status");
    try {
      if (enable) {
        await plugins.enable(enable);
        return text(200, `enable ${enable} success\n`);
      }
      if (disable) {
        await plugins.disable(disable);
        return text(200, `disable ${disable} success\n`);
      }
      if (status === "all") {
        // MOSN prints one line per plugin, then an empty line.
        return text(200, plugins.status().map((s) => line(s) + "\n").join("") + "\n");
      }
      if (status) {
        const s = plugins.status(status);
        if (s === undefined) return text(400, `No plugin named "${status}" is configured\n`);
        return text(200, line(s) + "\n");
      }
    } catch (err) {
      return text(400, `${(err as Error).message}\n`);
    }
    return text(400, pluginUsage(path));
  };
}
