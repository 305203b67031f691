/**
 * The certificate loader plugin in TypeScript (MOSN's cert_loader demo), with Mosaic's
 * plugin SDK: a more trusted process than the proxy holds the certificate and key, and
 * answers every call with the JSON body `{ "cert_pem", "key_pem", "ca_pem" }` that the
 * `plugin` certificate provider reads. `-d <dir>` names the folder holding
 * `server.crt`, `server.key` and `ca.crt`; the files are read on every call, so a
 * replaced certificate is served from the next fetch (SIGHUP, or `extend_verify.refresh`).
 *
 * Run it under Node.js (`../setup.sh` bundles it into `build/cert_loader.mjs`).
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { serve } from "../../../plugin.ts";

const flag = process.argv.indexOf("-d");
if (flag === -1 || process.argv[flag + 1] === undefined) {
  process.stderr.write("usage: cert_loader -d <folder with server.crt, server.key, ca.crt>\n");
  process.exit(2);
}
const dir = process.argv[flag + 1];

await serve({
  call() {
    try {
      const body = JSON.stringify({
        cert_pem: readFileSync(join(dir, "server.crt"), "utf8"),
        key_pem: readFileSync(join(dir, "server.key"), "utf8"),
        ca_pem: readFileSync(join(dir, "ca.crt"), "utf8"),
      });
      return { status: 200, body, header: { "content-type": "application/json" } };
    } catch (error) {
      // MOSN's convention: a negative status refuses; the proxy logs the plugin's stderr.
      process.stderr.write(`cert_loader: ${error instanceof Error ? error.message : error}\n`);
      return { status: -1 };
    }
  },
});
