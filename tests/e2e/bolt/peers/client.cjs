// A SOFARPC client (npm sofa-rpc-node) driven by JSON lines on stdin, for the Bolt tests
// and the example. Usage: node client.cjs <host:port>
//   {"id":1,"service":"com.example.EchoService","method":"echo","args":["hi"],"timeout":3000}
//     -> {"id":1,"ok":true,"result":"server:hi"} or {"id":1,"ok":false,"error":{name,message}}
//   {"id":2,"op":"many","n":1000,"timeout":10000[,"delay":ms (slow(ms, text) instead of echo)]}
//     -> {"id":2,"ok":true,"matched":1000,"mismatched":0,"errors":0,"firstError":null}
"use strict";
const readline = require("node:readline");
const { RpcClient } = require("sofa-rpc-node").client;

const serverHost = process.argv[2];
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const client = new RpcClient({ logger: quiet });
const consumers = new Map();

async function consumer(service) {
  let c = consumers.get(service);
  if (c === undefined) {
    c = client.createConsumer({ interfaceName: service, version: "1.0", serverHost });
    consumers.set(service, c);
    await c.ready();
  }
  return c;
}

function reply(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

async function run(command) {
  const service = command.service ?? "com.example.EchoService";
  const c = await consumer(service);
  const timeout = command.timeout ?? 3000;
  if (command.op === "bench") {
    // `concurrency` callers, each calling echo in a loop until `total` calls are made.
    const latencies = [];
    let started = 0;
    const begin = process.hrtime.bigint();
    const caller = async () => {
      while (started < command.total) {
        started++;
        const t0 = process.hrtime.bigint();
        await c.invoke("echo", ["bench"], { responseTimeout: timeout });
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    };
    await Promise.all(Array.from({ length: command.concurrency }, caller));
    const seconds = Number(process.hrtime.bigint() - begin) / 1e9;
    latencies.sort((a, b) => a - b);
    return {
      ok: true,
      callsPerSecond: Math.round(latencies.length / seconds),
      p99Ms: latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))],
    };
  }
  if (command.op === "many") {
    const n = command.n;
    const calls = [];
    for (let i = 0; i < n; i++) {
      calls.push(
        c.invoke(
          command.delay === undefined ? "echo" : "slow",
          command.delay === undefined ? [`call-${i}`] : [command.delay, `call-${i}`],
          { responseTimeout: timeout },
        ).then(
          (result) => (String(result).endsWith(`:call-${i}`) ? "matched" : "mismatched"),
          (error) => error,
        ),
      );
    }
    const outcomes = await Promise.all(calls);
    const errors = outcomes.filter((o) => o instanceof Error);
    return {
      ok: true,
      matched: outcomes.filter((o) => o === "matched").length,
      mismatched: outcomes.filter((o) => o === "mismatched").length,
      errors: errors.length,
      firstError: errors[0] ? `${errors[0].name}: ${errors[0].message}` : null,
    };
  }
  const result = await c.invoke(command.method, command.args ?? [], { responseTimeout: timeout });
  return { ok: true, result };
}

const inflight = new Set();
const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (line.trim() === "") return;
  const command = JSON.parse(line);
  const done = run(command).then(
    (result) => reply({ id: command.id, ...result }),
    (error) =>
      reply({ id: command.id, ok: false, error: { name: error.name, message: error.message } }),
  );
  inflight.add(done);
  done.then(() => inflight.delete(done));
});
// On end of input: answer what is in flight, then exit.
lines.on("close", async () => {
  await Promise.all(inflight);
  client.close();
  process.exit(0);
});
process.on("SIGTERM", () => process.exit(0));
