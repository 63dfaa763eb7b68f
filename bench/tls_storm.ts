/**
 * A TLS handshake storm for the `-storm` latency scenario, in its own process so that its
 * handshakes do not share the measuring generator's event loop:
 *
 *   deno run -A bench/tls_storm.ts PORT CA_FILE COUNT PREFIX
 *
 * Opens COUNT TLS connections (64 at a time), each sending CONNECT and waiting for CONNACK 0,
 * then keeps them idle until stdin says anything or closes; prints `connected N` and exits.
 */
import { BenchConn } from "./client.ts";

const [port, caFile, count, prefix] = Deno.args;
const ca = Deno.readTextFileSync(caFile);
const n = Number(count);
const conns: BenchConn[] = [];
let stopped = false;
let next = 0;
const work = Promise.all(Array.from({ length: 64 }, async () => {
  while (next < n && !stopped) {
    const i = next++;
    try {
      conns.push(
        await BenchConn.open(Number(port), `${prefix}-${i}`, {
          endpoint: { hostname: "127.0.0.1", port: Number(port), transport: "tls", ca },
          readBuffer: 1024,
        }),
      );
    } catch {
      // counted as not connected
    }
  }
}));
// stdin: any line or its end stops the storm.
for await (const _ of Deno.stdin.readable) break;
stopped = true;
await Promise.race([work, new Promise((r) => setTimeout(r, 5000))]);
console.log(`connected ${conns.length}`);
await Promise.all(conns.map((c) => c.close()));
Deno.exit(0);
