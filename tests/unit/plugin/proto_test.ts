import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { fromJSON } from "@grpc/proto-loader";
import {
  decodeHealthRequest,
  decodeHealthResponse,
  decodeRequest,
  decodeResponse,
  encodeHealthRequest,
  encodeHealthResponse,
  encodeRequest,
  encodeResponse,
  ProtoDecodeError,
} from "../../../src/plugin/proto.ts";

// An independent protobuf implementation (protobufjs via proto-loader) to check our codec.
const descriptor = {
  nested: {
    proto: {
      nested: {
        Request: {
          fields: {
            header: { keyType: "string", type: "string", id: 1 },
            trailer: { keyType: "string", type: "string", id: 2 },
            body: { type: "bytes", id: 3 },
            type: { type: "string", id: 4 },
          },
        },
        Response: {
          fields: {
            header: { keyType: "string", type: "string", id: 1 },
            trailer: { keyType: "string", type: "string", id: 2 },
            body: { type: "bytes", id: 3 },
            status: { type: "int32", id: 4 },
          },
        },
        Plugin: {
          methods: { Call: { requestType: "Request", responseType: "Response" } },
        },
      },
    },
  },
};
const definition = fromJSON(descriptor as unknown as Parameters<typeof fromJSON>[0], {
  defaults: true,
});
// deno-lint-ignore no-explicit-any
const call = (definition["proto.Plugin"] as any).Call;

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("a request encodes as protobufjs reads it", () => {
  const request = {
    header: { user: "admin", "x-ünï": "värde", empty: "" },
    trailer: { t: "1" },
    body: bytes("hello"),
    type: "checker",
  };
  const decoded = call.requestDeserialize(Buffer.from(encodeRequest(request)));
  assert.deepEqual({ ...decoded.header }, request.header);
  assert.deepEqual({ ...decoded.trailer }, request.trailer);
  assert.deepEqual(new Uint8Array(decoded.body), request.body);
  assert.equal(decoded.type, "checker");
});

Deno.test("a protobufjs response decodes, negative status included", () => {
  for (const status of [-1, 0, 1, 200, 2147483647, -2147483648]) {
    const wire = call.responseSerialize({
      header: { a: "b", "long": "x".repeat(300) },
      trailer: {},
      body: Buffer.from("world"),
      status,
    });
    const r = decodeResponse(wire);
    assert.equal(r.status, status);
    assert.deepEqual({ ...r.header }, { a: "b", long: "x".repeat(300) });
    assert.equal(new TextDecoder().decode(r.body), "world");
  }
});

Deno.test("a response encodes as protobufjs reads it, and round-trips", () => {
  for (const status of [-1, 0, 403, -2147483648]) {
    const response = { header: { k: "v", emoji: "😀" }, trailer: {}, body: bytes("b"), status };
    const wire = encodeResponse(response);
    const theirs = call.responseDeserialize(Buffer.from(wire));
    assert.equal(theirs.status, status);
    assert.deepEqual({ ...theirs.header }, response.header);
    const ours = decodeResponse(wire);
    assert.equal(ours.status, status);
    assert.deepEqual({ ...ours.header }, response.header);
  }
});

Deno.test("a request round-trips through our own codec and empty fields are left out", () => {
  assert.equal(encodeRequest({}).length, 0);
  assert.equal(encodeResponse({}).length, 0);
  const r = decodeRequest(encodeRequest({ header: { a: "1" }, body: bytes("x"), type: "t" }));
  assert.deepEqual({ ...r.header }, { a: "1" });
  assert.equal(r.type, "t");
  assert.deepEqual(new Uint8Array(r.body), bytes("x"));
  assert.deepEqual({ ...r.trailer }, {});
});

Deno.test("a header named __proto__ stays a plain key", () => {
  const r = decodeRequest(encodeRequest({ header: JSON.parse('{"__proto__":"x"}') }));
  assert.equal(r.header["__proto__"], "x");
  assert.equal(Object.getPrototypeOf(r.header), null);
});

Deno.test("unknown fields are skipped and truncated messages are rejected", () => {
  // field 9 varint 5, field 10 fixed64, field 11 fixed32, then body "a".
  const wire = Uint8Array.of(0x48, 5, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5d, 1, 2, 3, 4, 0x1a, 1, 97);
  assert.equal(new TextDecoder().decode(decodeResponse(wire).body), "a");
  assert.throws(() => decodeResponse(Uint8Array.of(0x1a, 5, 1)), ProtoDecodeError);
  assert.throws(() => decodeResponse(Uint8Array.of(0x20, 0xff)), ProtoDecodeError);
  assert.throws(() => encodeResponse({ status: 1.5 }), RangeError);
});

Deno.test("health messages round-trip", () => {
  assert.equal(decodeHealthRequest(encodeHealthRequest("plugin")), "plugin");
  assert.equal(decodeHealthRequest(encodeHealthRequest("")), "");
  for (const s of ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"] as const) {
    assert.equal(decodeHealthResponse(encodeHealthResponse(s)), s);
  }
});
