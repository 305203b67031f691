/**
 * The header checker plugin in TypeScript, with Mosaic's plugin SDK: `-c config.json`
 * names the required headers (name → value); a request missing one, or with another
 * value, gets status -1 (deny).
 *
 * Run it under Node.js (see `../setup.sh`, which bundles it), or under Deno with
 * `deno run --allow-read --allow-env --allow-net --allow-write checker.ts -c ../checkconf.json`.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import process from "node:process";
import { serve } from "../../../plugin.ts";

const flag = process.argv.indexOf("-c");
if (flag === -1 || process.argv[flag + 1] === undefined) {
  process.stderr.write("usage: checker -c <config.json>\n");
  process.exit(2);
}
const config = JSON.parse(readFileSync(process.argv[flag + 1], "utf8")) as Record<string, unknown>;
const required = Object.entries(config).map(([name, value]) => [name.toLowerCase(), String(value)]);

await serve({
  call(request) {
    for (const [name, value] of required) {
      if (request.header[name] !== value) return { status: -1 };
    }
    return { status: 0 };
  },
});
