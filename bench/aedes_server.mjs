// Aedes broker for the benchmark: aedes' own TCP server, nothing else.
// Usage: node bench/aedes_server.mjs <port> <path to aedes.js>
import net from "node:net";
import process from "node:process";
import { pathToFileURL } from "node:url";

const port = Number(process.argv[2]);
const modulePath = process.argv[3];
const { Aedes } = await import(pathToFileURL(modulePath).href);
const aedes = await Aedes.createBroker({});
const server = net.createServer({ noDelay: true }, aedes.handle);
server.maxConnections = 1_000_000;
server.listen({ port, host: "127.0.0.1", backlog: 4096 }, () => {
  console.log(`aedes listening tcp 127.0.0.1:${port}`);
});
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
