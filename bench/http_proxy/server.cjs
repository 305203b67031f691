// The node `http-proxy` target of Mosaic's load benchmark:
//   node bench/http_proxy/server.cjs <port> <upstream url>
// One process, a keep-alive agent to the upstream, listening on 127.0.0.1 only.
"use strict";

const http = require("node:http");
const httpProxy = require("http-proxy");

const [port, target] = process.argv.slice(2);
if (!port || !target) {
  console.error("usage: node bench/http_proxy/server.cjs <port> <upstream url>");
  process.exit(2);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const proxy = httpProxy.createProxyServer({ target, agent });
proxy.on("error", (error, _req, res) => {
  console.error(`http-proxy: ${error.message}`);
  if (!res.headersSent) res.writeHead(502);
  res.end();
});

const server = http.createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 30_000;
server.listen(Number(port), "127.0.0.1", () => {
  console.log(`http-proxy listening on 127.0.0.1:${port}, upstream ${target}`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    server.close();
    agent.destroy();
    process.exit(0);
  });
}
