/**
 * The HTTP/1.1 upstream pool end to end, through the real proxy process: an upstream
 * that sends an unsolicited second response must not answer another client, and a
 * Node.js upstream that closes idle connections after its 5 s keep-alive timeout must
 * not turn the next request into a 502.
 */

import assert from "node:assert/strict";
import { startProxy, writeConfig } from "../../helpers/proxy_process.ts";
import { mosaicYaml } from "../fixtures/mosaic_yaml.ts";
import { HostileUpstream } from "../../attack/hostile_upstream.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A client without connection reuse, so only the proxy's upstream pool is under test. */
function client(): Deno.HttpClient {
  return Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
}

async function text(
  http: Deno.HttpClient,
  url: string,
  init: RequestInit = {},
): Promise<[number, string]> {
  const response = await fetch(url, { ...init, client: http, signal: AbortSignal.timeout(10_000) });
  return [response.status, await response.text()];
}

async function withProxy(
  upstreamAddress: string,
  run: (base: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mosaic-pool-e2e-" });
  try {
    const file = await writeConfig(
      mosaicYaml({ clusters: [{ name: "up", hosts: [upstreamAddress] }] }),
      dir,
    );
    const proxy = await startProxy(file);
    try {
      await run(`http://${proxy.listeners.get("l")}`);
    } finally {
      await proxy.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a stray second response from the upstream never reaches the next client", async () => {
  const upstream = new HostileUpstream("stray_response");
  const http = client();
  try {
    await withProxy(upstream.address, async (base) => {
      assert.deepEqual(await text(http, `${base}/1`), [200, "ok GET /1"]);
      // the upstream sends its stray response 300 ms after the first
      await sleep(600);
      assert.deepEqual(await text(http, `${base}/2`), [200, "ok GET /2"]);
      for (let i = 3; i < 6; i++) {
        assert.deepEqual(await text(http, `${base}/${i}`), [200, `ok GET /${i}`]);
      }
      assert.equal(upstream.accepted, 2, "the dirty connection was replaced once");
    });
  } finally {
    http.close();
    await upstream.close();
  }
});

const NODE_UPSTREAM = `
const http = require("node:http");
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    res.setHeader("content-type", "text/plain");
    res.end(req.method + " " + req.url + " " + Buffer.concat(chunks).toString());
  });
});
// server.keepAliveTimeout stays Node's default, 5 s
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
`;

/** Starts Node.js on a free port; resolves once it printed the port. */
async function startNode(): Promise<{ port: number; child: Deno.ChildProcess }> {
  const child = new Deno.Command("node", {
    args: ["-e", NODE_UPSTREAM],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const deadline = Date.now() + 10_000;
  try {
    while (!out.includes("\n")) {
      if (Date.now() > deadline) throw new Error("node printed no port");
      const { value, done } = await reader.read();
      if (done) throw new Error(`node exited before printing its port: ${out}`);
      out += value;
    }
  } catch (err) {
    child.kill("SIGKILL");
    await child.status;
    throw err;
  } finally {
    await reader.cancel().catch(() => {});
  }
  return { port: Number(out.trim()), child };
}

Deno.test({
  name: "a POST 6 s after the last request to a Node.js upstream (keep-alive 5 s) gets 200",
  sanitizeResources: false, // node's stdout pipe closes with the child
  fn: async () => {
    const node = await startNode();
    const http = client();
    try {
      await withProxy(`127.0.0.1:${node.port}`, async (base) => {
        assert.deepEqual(await text(http, `${base}/first`), [200, "GET /first "]);
        await sleep(6000);
        assert.deepEqual(
          await text(http, `${base}/late`, { method: "POST", body: "late body" }),
          [200, "POST /late late body"],
        );
        // a burst opens several upstream connections, all idle afterwards
        const burst = await Promise.all(
          Array.from({ length: 20 }, (_, i) => text(http, `${base}/burst/${i}`)),
        );
        burst.forEach(([status, body], i) => {
          assert.equal(status, 200);
          assert.equal(body, `GET /burst/${i} `);
        });
        await sleep(6000);
        const posts = await Promise.all(
          Array.from(
            { length: 5 },
            (_, i) => text(http, `${base}/after/${i}`, { method: "POST", body: `body ${i}` }),
          ),
        );
        posts.forEach(([status, body], i) => {
          assert.equal(status, 200);
          assert.equal(body, `POST /after/${i} body ${i}`);
        });
      });
    } finally {
      http.close();
      node.child.kill("SIGTERM");
      await node.child.status;
    }
  },
});
