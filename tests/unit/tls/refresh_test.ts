import assert from "node:assert/strict";
import type { TlsMaterial } from "../../../src/filter/api.ts";
import type { BoundCertificateProvider } from "../../../src/tls/material.ts";
import { MaterialRefresher } from "../../../src/tls/refresh.ts";

/** An in-memory provider that answers from a script: material or an error per fetch. */
function scripted(
  answers: (TlsMaterial | Error)[],
): BoundCertificateProvider & { fetches: number } {
  return {
    name: "scripted",
    fetches: 0,
    fetch() {
      const answer = answers[Math.min(this.fetches++, answers.length - 1)];
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
    },
  };
}

const v1: TlsMaterial = { cert: "cert-1", key: "key-1", refreshAfterMs: 30 };
const v2: TlsMaterial = { cert: "cert-2", key: "key-2", refreshAfterMs: 30 };
const v3: TlsMaterial = { cert: "cert-3", key: "key-3" };

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(condition(), `timed out waiting for ${what}`);
}

Deno.test("the refresher fetches on the provider's interval and keeps old material on failure", async () => {
  const provider = scripted([new Error("plugin down"), v2, v3]);
  const updates: string[] = [];
  const errors: string[] = [];
  const refresher = new MaterialRefresher({
    provider,
    initial: v1,
    onUpdate: (m) => updates.push(m.cert),
    onError: (e) => errors.push((e as Error).message),
  });
  try {
    await until(() => updates.length === 2, "two updates");
    // First fetch failed: cert-1 stayed, and the next try came after the same interval.
    assert.deepEqual(errors, ["plugin down"]);
    assert.deepEqual(updates, ["cert-2", "cert-3"]);
    assert.equal(refresher.current.cert, "cert-3");
    // cert-3 has no refreshAfterMs: no more timed fetches.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(provider.fetches, 3);
  } finally {
    refresher.close();
  }
});

Deno.test("refreshNow fetches at once, shares a running fetch, and does nothing after close", async () => {
  const provider = scripted([v3]);
  const updates: string[] = [];
  const refresher = new MaterialRefresher({
    provider,
    initial: { cert: "cert-0", key: "key-0" },
    onUpdate: (m) => updates.push(m.cert),
    onError: (e) => assert.fail(String(e)),
  });
  const [a, b] = await Promise.all([refresher.refreshNow(), refresher.refreshNow()]);
  assert.equal(a, true);
  assert.equal(b, true);
  assert.equal(provider.fetches, 1);
  assert.deepEqual(updates, ["cert-3"]);
  refresher.close();
  assert.equal(await refresher.refreshNow(), false);
  assert.equal(provider.fetches, 1);
});

Deno.test("material that onUpdate rejects is reported and not put in force", async () => {
  const errors: unknown[] = [];
  const refresher = new MaterialRefresher({
    provider: scripted([v3]),
    initial: { cert: "cert-0", key: "key-0" },
    onUpdate: () => {
      throw new Error("bad certificate");
    },
    onError: (e) => errors.push(e),
  });
  assert.equal(await refresher.refreshNow(), false);
  assert.equal(refresher.current.cert, "cert-0");
  assert.match(String(errors[0]), /bad certificate/);
  refresher.close();
});
