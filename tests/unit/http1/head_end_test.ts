import assert from "node:assert/strict";
import { findHeadEnd, HEAD_BARE_LF, HEAD_INCOMPLETE } from "../../../src/http1/head_end.ts";
import { toLatin1 } from "../../attack/client_socket.ts";

Deno.test("findHeadEnd finds the CRLF CRLF of request and response heads", () => {
  for (const head of ["GET / HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200 OK\r\na: 1\r\n\r\n"]) {
    const bytes = toLatin1(`${head}body`);
    assert.equal(findHeadEnd(bytes, 0, bytes.length), head.length);
  }
});

Deno.test("findHeadEnd waits for an incomplete head, and bytes past end do not count", () => {
  const partial = toLatin1("HTTP/1.1 200 OK\r\na: 1\r\n\r");
  assert.equal(findHeadEnd(partial, 0, partial.length), HEAD_INCOMPLETE);
  const whole = toLatin1("HTTP/1.1 200 OK\r\na: 1\r\n\r\nbody");
  assert.equal(findHeadEnd(whole, 0, whole.length - 6), HEAD_INCOMPLETE);
});

Deno.test("findHeadEnd refuses a line that ends in a bare LF, in either kind of head", () => {
  for (const head of ["GET / HTTP/1.1\nHost: a\n\n", "HTTP/1.1 200 OK\na: 1\n\nbody"]) {
    const bytes = toLatin1(head);
    assert.equal(findHeadEnd(bytes, 0, bytes.length), HEAD_BARE_LF);
  }
  const late = toLatin1("HTTP/1.1 200 OK\r\na: 1\n\r\n");
  assert.equal(findHeadEnd(late, 0, late.length), HEAD_BARE_LF);
});

Deno.test("findHeadEnd resumes where a previous search stopped, mid blank line", () => {
  const bytes = toLatin1("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  for (let scanned = 0; scanned < bytes.length; scanned++) {
    assert.equal(findHeadEnd(bytes, 0, scanned), HEAD_INCOMPLETE, `end ${scanned}`);
    assert.equal(findHeadEnd(bytes, scanned, bytes.length), bytes.length, `from ${scanned}`);
  }
});
