// Bolt frames straight from npm sofa-bolt-node's encoder and decoder, for what the
// SOFARPC client does not expose: heartbeats and oneway requests.
// Usage: node raw.cjs <host:port> heartbeat            -> prints "heartbeat_ack <id>"
//        node raw.cjs <host:port> oneway <text>        -> prints "sent" (notify(text), no answer)
"use strict";
const net = require("node:net");
const protocol = require("sofa-bolt-node");

const [host, port] = process.argv[2].split(":");
const op = process.argv[3];
const sentReqs = new Map();
const socket = net.connect(Number(port), host);
const encoder = protocol.encoder({ sentReqs });
const decoder = protocol.decoder({ sentReqs });
encoder.pipe(socket).pipe(decoder);
const bail = setTimeout(() => {
  console.log("no answer");
  process.exit(1);
}, 5000);

decoder.on("heartbeat_ack", (ack) => {
  console.log(`heartbeat_ack ${ack.packetId}`);
  clearTimeout(bail);
  socket.end();
});
decoder.on("response", (response) => {
  console.log(`response ${response.packetId}`);
});

if (op === "heartbeat") {
  encoder.writeHeartbeat(7, { clientUrl: "bolt://127.0.0.1:0" });
} else if (op === "oneway") {
  const service = "com.example.EchoService:1.0";
  encoder.writeRequest(8, {
    serverSignature: service,
    methodName: "notify",
    args: [{ $class: "java.lang.String", $: process.argv[4] }],
    requestProps: { service },
    timeout: 3000,
    oneway: true,
  }, (error) => {
    if (error) throw error;
    console.log("sent");
    clearTimeout(bail);
    // Give a wrong answer (there must be none) time to show before closing.
    setTimeout(() => socket.end(), 300);
  });
}
