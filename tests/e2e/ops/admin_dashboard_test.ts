/**
 * The dashboard in a real browser: Debian's Chromium (installed when missing), headless,
 * driven by npm's playwright-core. The numbers on the page follow the requests the test
 * sends, with no reload of the page; a screenshot is kept as the test's artifact
 * (`MOSAIC_DASHBOARD_SCREENSHOT`, default a temp file).
 */

import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { startProxy, writeConfig } from "../../helpers/proxy_process.ts";
import { ensureDebianPackage, opsSetup, send } from "./ops_helpers.ts";

Deno.test("the dashboard shows live counts, rates, hosts and filters", async () => {
  const executablePath = await ensureDebianPackage("chromium", "chromium");
  const setup = opsSetup();
  const proxy = await startProxy(await writeConfig(setup.yaml()));
  const browser = await chromium.launch({
    executablePath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const requests: string[] = [];
    page.on("request", (r) => requests.push(r.url()));
    await page.goto(`${setup.admin}/dashboard`);
    const text = (test: string) => page.locator(`[data-test="${test}"]`).textContent();
    const waitFor = (test: string, value: string) =>
      page.waitForFunction(
        ([t, v]) =>
          // Runs in the page, where `document` exists.
          (globalThis as unknown as {
            document: { querySelector(s: string): { textContent: string | null } | null };
          }).document.querySelector(`[data-test="${t}"]`)?.textContent === v,
        [test, value],
        { timeout: 15_000 },
      );

    await waitFor("listener-web-total", "0");
    await send(`${setup.proxy}/`, 12);
    await send(`${setup.proxy}/`, 3, {});
    await send(`${setup.proxy}/fail`, 2);
    await send(`${setup.proxy}/dead`, 1);
    await waitFor("listener-web-total", "18");
    assert.equal(await text("listener-web-2xx"), "12");
    assert.equal(await text("listener-web-4xx"), "3");
    assert.equal(await text("listener-web-5xx"), "3");
    assert.equal(await text("cluster-up-total"), "14");
    assert.equal(await text("cluster-up-5xx"), "2");
    assert.equal(await text(`host-up-${setup.upstream.address}-health`), "healthy");
    assert.equal(await text("filter-web-demo-calls"), "18");
    assert.equal(await text("filter-web-demo-stops"), "3");
    assert.match((await text("listener-web-p50"))!, /^\d+\.\d\d$/);

    // More requests: the page follows by itself, and shows a rate over the last second.
    await send(`${setup.proxy}/`, 20);
    await waitFor("listener-web-total", "38");
    const rate = Number(await text("listener-web-rate"));
    assert.ok(rate > 0, `rate ${rate}`);
    assert.equal(
      await page.locator("#version").textContent().then((v) => /^sha256:/.test(v!)),
      true,
    );
    // Nothing but the admin listener was asked for (no CDN).
    assert.ok(requests.every((u) => u.startsWith(setup.admin)), requests.join("\n"));

    const out = Deno.env.get("MOSAIC_DASHBOARD_SCREENSHOT") ??
      await Deno.makeTempFile({ prefix: "mosaic-dashboard-", suffix: ".png" });
    await page.screenshot({ path: out, fullPage: true });
    assert.ok((await Deno.stat(out)).size > 10_000);
    console.log(`dashboard screenshot: ${out}`);
  } finally {
    await browser.close();
    await proxy.stop();
    await setup.upstream.close();
  }
});
