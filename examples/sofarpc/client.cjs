// Calls the example's EchoService through Mosaic with npm sofa-rpc-node's RpcClient.
// Usage: node examples/sofarpc/client.cjs [host:port] (default 127.0.0.1:2045)
"use strict";
const { RpcClient } = require("sofa-rpc-node").client;

const serverHost = process.argv[2] ?? "127.0.0.1:2045";
const quiet = { info() {}, warn() {}, error() {}, debug() {} };

async function main() {
  const client = new RpcClient({ logger: quiet });
  const call = async (service, method, args) => {
    const consumer = client.createConsumer({ interfaceName: service, version: "1.0", serverHost });
    await consumer.ready();
    try {
      console.log(
        `${service}.${method}:`,
        await consumer.invoke(method, args, { responseTimeout: 3000 }),
      );
    } catch (error) {
      console.log(`${service}.${method}: ${error.name}: ${error.message}`);
    }
  };
  await call("com.example.EchoService", "echo", ["hello"]);
  await call("com.example.EchoService", "fail", ["boom"]);
  await call("com.example.OtherService", "who", []);
  await call("com.example.Blocked", "echo", ["x"]);
  await client.close();
  process.exit(0);
}
main();
