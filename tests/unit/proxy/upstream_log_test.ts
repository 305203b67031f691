import assert from "node:assert/strict";
import { createInProcessProxy } from "../../../src/proxy/in_process.ts";
import { UpstreamConnectError } from "../../../src/upstream/types.ts";
import { withLogCapture } from "../../helpers/log_capture.ts";

Deno.test("a refused upstream connection is one log line with flag, host and cluster", async () => {
  await withLogCapture(async (lines) => {
    const proxy = await createInProcessProxy({
      upstream: () => {
        throw new UpstreamConnectError("Could not connect to upstream-0.local:80", {
          cause: new Deno.errors.ConnectionRefused("Connection refused (os error 111)"),
        });
      },
    });
    const response = await proxy.request("/");
    assert.equal(response.status, 502);
    await response.body?.cancel();
    await proxy.close();
    const upstreamLines = lines.filter((line) => line.includes("upstream-0.local:80"));
    assert.equal(upstreamLines.length, 1, lines.join("\n"));
    assert.match(
      upstreamLines[0],
      /upstream upstream-0\.local:80 failed \(UF, cluster "upstream"\): connection refused/,
    );
    assert.doesNotMatch(upstreamLines[0], /\n\s+at /);
  });
});

Deno.test("a route timeout is one line with UT, host and cluster, and its timer is cleared", async () => {
  await withLogCapture(async (lines) => {
    const proxy = await createInProcessProxy({
      routes: [{
        match: { prefix: "/", headers: [] },
        route: {
          clusterName: "upstream",
          weightedClusters: [],
          timeoutMs: 50,
          retryPolicy: undefined,
          prefixRewrite: undefined,
          hostRewrite: undefined,
        },
      }],
      upstream: (request) =>
        new Promise((_, reject) =>
          request.signal.addEventListener("abort", () => reject(request.signal.reason))
        ),
    });
    const response = await proxy.request("/");
    assert.equal(response.status, 504);
    await response.body?.cancel();
    await proxy.close();
    const timeouts = lines.filter((line) => line.includes("timed out"));
    assert.equal(timeouts.length, 1, lines.join("\n"));
    assert.match(timeouts[0], /upstream upstream-0\.local:80 timed out \(UT, cluster "upstream"\)/);
    assert.doesNotMatch(lines.join("\n"), /TimeoutError|\n\s+at /);
  });
});
