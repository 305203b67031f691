import assert from "node:assert/strict";
import { DeadlineQueue } from "../../../src/proxy/deadlines.ts";

Deno.test("a deadline queue aborts each stream at its own deadline, with one timer", async () => {
  const queue = new DeadlineQueue(60);
  const start = Date.now();
  const first = new AbortController();
  const ended = new AbortController();
  const second = new AbortController();
  queue.add(first, start);
  const done = queue.add(ended, start);
  await new Promise((resolve) => setTimeout(resolve, 20));
  queue.add(second, Date.now());
  assert.equal(queue.armedFor, start + 60, "the timer waits for the oldest deadline only");
  queue.end(done); // that stream ended in time
  const firstAborted = new Promise<number>((resolve) =>
    first.signal.addEventListener("abort", () => resolve(Date.now()))
  );
  const secondAborted = new Promise<number>((resolve) =>
    second.signal.addEventListener("abort", () => resolve(Date.now()))
  );
  const [a, b] = await Promise.all([firstAborted, secondAborted]);
  assert.ok(a - start >= 59, `the first expired after ${a - start} ms`);
  assert.ok(b - start >= 79, `the second expired after ${b - start} ms`);
  assert.equal(ended.signal.aborted, false, "a stream that ended in time is never aborted");
  assert.equal((first.signal.reason as DOMException).name, "TimeoutError");
  assert.match((first.signal.reason as DOMException).message, /route timeout of 60 ms/);
  assert.equal(queue.pending, 0);
  assert.equal(queue.armedFor, undefined, "no timer is left once the queue is empty");
});

Deno.test("when every stream ended in time, the queue's timer is cleared", () => {
  const queue = new DeadlineQueue(10_000);
  const now = Date.now();
  const a = queue.add(new AbortController(), now);
  const b = queue.add(new AbortController(), now);
  queue.end(a);
  assert.equal(queue.armedFor, now + 10_000, "one stream still waits");
  queue.end(b);
  queue.end(b); // a second end is harmless
  assert.equal(queue.armedFor, undefined);
  assert.equal(queue.pending, 0);
});
