/**
 * SOFARPC calls per second and p99, direct and through Mosaic, at 1 and 50 concurrent
 * calls: npm sofa-rpc-node's server and client (under Node.js), Mosaic's Bolt listener
 * and multiplexing pool between them.
 *
 * ```sh
 * ./node_modules/.bin/deno run --allow-all bench/bolt_bench.ts [calls per run, default 20000]
 * ```
 *
 * @module
 */

import { startBoltServer } from "../tests/e2e/bolt/peers.ts";
import { startProxy, writeConfig } from "../tests/helpers/proxy_process.ts";

const total = Number(Deno.args[0] ?? 20_000);
const server = await startBoltServer("bench");
const config = await writeConfig(`
servers:
  - routers:
      - router_config_name: rpc
        virtual_hosts:
          - name: rpc
            domains: ["*"]
            routers:
              - match: { headers: [{ name: service, value: ".*" }] }
                route: { cluster_name: servers }
    listeners:
      - name: bolt_in
        address: 127.0.0.1:0
        filter_chains:
          - filters:
              - type: proxy
                config: { downstream_protocol: bolt, router_config_name: rpc }
cluster_manager:
  clusters:
    - { name: servers, type: SIMPLE, lb_type: LB_RANDOM, hosts: [{ address: "${server.address}" }] }
`);
const proxy = await startProxy(config, { flags: ["--allow-net", "--allow-read"] });
const rows: string[] = [];
try {
  for (
    const [label, target] of [["direct", server.address], [
      "mosaic",
      proxy.listeners.get("bolt_in")!,
    ]]
  ) {
    for (const concurrency of [1, 50]) {
      // A warm-up run (connections, JIT), then the measured one.
      await sendBench(target, concurrency, Math.min(2000, total));
      const reply = await sendBench(target, concurrency, total);
      rows.push(
        `| ${label} | ${concurrency} | ${reply.callsPerSecond} | ${reply.p99Ms.toFixed(2)} |`,
      );
    }
  }
} finally {
  await proxy.stop();
  await server.stop();
}
console.log(`| path | concurrent calls | calls/s | p99 ms |\n| --- | --- | --- | --- |`);
console.log(rows.join("\n"));

/** Runs the client's bench op once against `target`. */
async function sendBench(
  target: string,
  concurrency: number,
  calls: number,
): Promise<{ callsPerSecond: number; p99Ms: number }> {
  const child = new Deno.Command("node", {
    args: [new URL("../tests/e2e/bolt/peers/client.cjs", import.meta.url).pathname, target],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(
    new TextEncoder().encode(
      JSON.stringify({ id: 1, op: "bench", concurrency, total: calls, timeout: 10_000 }) + "\n",
    ),
  );
  await writer.close();
  const output = await child.output();
  const line = new TextDecoder().decode(output.stdout).trim().split("\n").at(-1)!;
  return JSON.parse(line);
}
