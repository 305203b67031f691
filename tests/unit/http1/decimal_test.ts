import assert from "node:assert/strict";
import { parseDecimal } from "../../../src/http1/decimal.ts";

Deno.test("parseDecimal reads digits only, up to 15 of them", () => {
  assert.equal(parseDecimal("0"), 0);
  assert.equal(parseDecimal("42"), 42);
  assert.equal(parseDecimal("999999999999999"), 999999999999999);
  for (const bad of ["", "-1", "+1", " 1", "1 ", "1.5", "0x10", "1e3", "1000000000000000"]) {
    assert.equal(parseDecimal(bad), -1, JSON.stringify(bad));
  }
});
