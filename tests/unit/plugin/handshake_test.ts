import assert from "node:assert/strict";
import { HandshakeError, parseHandshake } from "../../../src/plugin/handshake.ts";

Deno.test("the 5-field tcp handshake parses", () => {
  assert.deepEqual(parseHandshake("p", "1|1|tcp|127.0.0.1:1234|grpc"), {
    network: "tcp",
    address: "127.0.0.1:1234",
    target: "127.0.0.1:1234",
  });
});

Deno.test("go-plugin's 6-field unix handshake with its trailing bar parses", () => {
  assert.deepEqual(parseHandshake("p", "1|1|unix|/tmp/plugin123|grpc|"), {
    network: "unix",
    address: "/tmp/plugin123",
    target: "unix:///tmp/plugin123",
  });
  assert.equal(parseHandshake("p", "1|1|tcp|[::1]:5000|grpc|\r").target, "[::1]:5000");
  assert.equal(parseHandshake("p", "1|1|unix|/tmp/s|grpc").target, "unix:///tmp/s");
});

function rejects(line: string, ...fragments: string[]): void {
  assert.throws(() => parseHandshake("checker", line), (e: unknown) => {
    assert.ok(e instanceof HandshakeError);
    const message = e.message;
    assert.match(message, /^Plugin "checker" printed a bad handshake/);
    assert.ok(message.includes(JSON.stringify(line)), `quotes the line: ${message}`);
    for (const f of fragments) assert.ok(message.includes(f), `mentions ${f}: ${message}`);
    return true;
  });
}

Deno.test("bad handshakes are rejected with a message naming the plugin and quoting the line", () => {
  rejects("hello world", "expected 5 or 6");
  rejects("", "expected 5 or 6");
  rejects("2|1|tcp|127.0.0.1:1|grpc", "core protocol version must be 1", '"2"');
  rejects("1|2|tcp|127.0.0.1:1|grpc", "app protocol version must be 1", '"2"');
  rejects("1|1|tcp|127.0.0.1:1|netrpc", "netrpc", 'only "grpc"');
  rejects("1|1|udp|127.0.0.1:1|grpc", "network must be");
  rejects("1|1|tcp|127.0.0.1:1|http", 'protocol must be "grpc"');
  rejects("1|1|unix|relative/sock|grpc", "absolute path");
  rejects("1|1|tcp|nohost|grpc", "host:port");
  rejects("1|1|tcp||grpc", "address is empty");
  rejects("1|1|tcp|127.0.0.1:1|grpc|MIIBcert", "AutoMTLS");
  rejects("1|1|tcp|127.0.0.1:1|grpc|x|y", "expected 5 or 6");
});
