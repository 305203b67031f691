import assert from "node:assert/strict";
import { formatTraceparent, parseTraceparent, tracer } from "../../../src/trace/tracer.ts";

const ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";

Deno.test("a valid traceparent parses, upper case and a future version's extra fields too", () => {
  assert.deepEqual(parseTraceparent(`00-${ID}-${PARENT}-01`), {
    traceId: ID,
    spanId: PARENT,
    traceFlags: 1,
    isRemote: true,
  });
  assert.equal(parseTraceparent(`00-${ID.toUpperCase()}-${PARENT}-00`)?.traceFlags, 0);
  assert.equal(parseTraceparent(`01-${ID}-${PARENT}-01-more`)?.traceId, ID);
});

Deno.test("an invalid traceparent is ignored", () => {
  for (
    const value of [
      null,
      "",
      `00-${ID}-${PARENT}`,
      `00-${ID}-${PARENT}-01-extra`,
      `ff-${ID}-${PARENT}-01`,
      `00-${"0".repeat(32)}-${PARENT}-01`,
      `00-${ID}-${"0".repeat(16)}-01`,
      `00-${ID.replace("4", "g")}-${PARENT}-01`,
      `00_${ID}-${PARENT}-01`,
      `01-${ID}-${PARENT}-01x`,
    ]
  ) {
    assert.equal(parseTraceparent(value), undefined, String(value));
  }
});

Deno.test("traceparent formats back", () => {
  assert.equal(
    formatTraceparent({ traceId: ID, spanId: PARENT, traceFlags: 1 }),
    `00-${ID}-${PARENT}-01`,
  );
});

Deno.test("the tracer is off without OTEL_DENO", () => {
  if (Deno.env.get("OTEL_DENO") === "true") return;
  assert.equal(tracer, undefined);
});
