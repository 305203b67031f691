// A SOFARPC server (npm sofa-rpc-node) for the Bolt tests and the example.
// Usage: node server.cjs <port> <label>; prints "listening <port>" once serving.
"use strict";
const { RpcServer } = require("sofa-rpc-node").server;

const port = Number(process.argv[2] ?? 12200);
const label = process.argv[3] ?? "server";
const quiet = { info() {}, warn() {}, error: console.error, debug() {} };
const notified = [];

const server = new RpcServer({ logger: quiet, port });
server.addService({ interfaceName: "com.example.EchoService", version: "1.0" }, {
  // sofa-rpc-node serves async functions only.
  async echo(text) {
    return await Promise.resolve(`${label}:${text}`);
  },
  async fail(message) {
    await Promise.resolve();
    throw new Error(message);
  },
  async slow(ms, text) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return `${label}:${text}`;
  },
  async notify(text) {
    notified.push(text);
    return await Promise.resolve("ok");
  },
  async notified() {
    return await Promise.resolve(JSON.stringify(notified));
  },
});
server.addService({ interfaceName: "com.example.OtherService", version: "1.0" }, {
  async who() {
    return await Promise.resolve(`${label}:other`);
  },
});

server.start().then(() => {
  process.stdout.write(`listening ${server.publishPort}\n`);
}, (error) => {
  console.error(error);
  process.exit(1);
});
process.on("SIGTERM", () => process.exit(0));
