/**
 * Sockets that never become a live session are closed at the connect timeout on every
 * listener that has a handshake of its own (issue 16, finding 3): an idle TLS socket, half a
 * ClientHello, a whole ClientHello and then silence, a half-sent HTTP request to /health.
 */
import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { EXTERNAL, scoped, startBroker } from "../helpers/broker.ts";
import { listenerPort, makeCerts } from "../transport/helpers.ts";

const CONNECT_TIMEOUT_S = 1;
/** Closed by then, or held too long (node's own TLS handshake timeout is 120 s). */
const DEADLINE_MS = CONNECT_TIMEOUT_S * 1000 + 2_000;

/** The first flight a real TLS client sends: its ClientHello, caught by a silent server. */
async function realClientHello(): Promise<Uint8Array> {
  const { promise, resolve } = Promise.withResolvers<Uint8Array>();
  const server = net.createServer((s) =>
    s.once("data", (d: Uint8Array) => {
      resolve(new Uint8Array(d));
      s.destroy();
    })
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const client = tls.connect({ port, host: "127.0.0.1", rejectUnauthorized: false });
  client.on("error", () => {});
  const hello = await promise;
  client.destroy();
  server.close();
  return hello;
}

/** Opens a socket, sends `opening`, and resolves with the ms until the broker closes it. */
function heldFor(port: number, opening: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    let start = 0;
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`still open after ${DEADLINE_MS} ms`));
    }, DEADLINE_MS);
    s.on("error", () => {});
    s.on("data", () => {});
    s.on("connect", () => {
      start = performance.now();
      if (opening.length) s.write(opening);
    });
    s.on("close", () => {
      clearTimeout(timer);
      resolve(performance.now() - start);
    });
  });
}

Deno.test({
  name: "TLS handshakes and HTTP requests that never finish are closed at the connect timeout",
  ignore: EXTERNAL, // starts its own broker
  fn: () =>
    scoped(async (defer) => {
      const certs = await makeCerts();
      defer(() => Deno.remove(certs.dir, { recursive: true }));
      const broker = await startBroker({
        args: [
          `--mqttwk.broker.ssl-cert-file=${certs.serverCert}`,
          `--mqttwk.broker.ssl-key-file=${certs.serverKey}`,
          "--mqttwk.broker.ssl-port=0",
          "--mqttwk.broker.wss-port=0",
          "--mqttwk.broker.http-enabled=true",
          "--server.port=0",
          `--mqttwk.broker.connect-timeout=${CONNECT_TIMEOUT_S}`,
        ],
      });
      defer(() => broker.stop());
      const [tlsPort, wssPort, http] = await Promise.all(
        ["tls", "wss", "http"].map((k) => listenerPort(broker, k)),
      );
      const hello = await realClientHello();
      const cases: [string, number, Uint8Array][] = [
        ["tls, idle socket", tlsPort, new Uint8Array()],
        ["tls, half a ClientHello", tlsPort, hello.subarray(0, 20)],
        ["tls, a ClientHello then silence", tlsPort, hello],
        ["wss, a ClientHello then silence", wssPort, hello],
        ["http, half a request", http, new TextEncoder().encode("GET /health HTTP/1.1\r\n")],
      ];
      const results = await Promise.allSettled(cases.map(([, p, o]) => heldFor(p, o)));
      results.forEach((r, i) => {
        const what = r.status === "fulfilled" ? `${r.value.toFixed(0)} ms` : r.reason.message;
        console.log(
          `${cases[i][0]}: closed after ${what} (connect timeout ${CONNECT_TIMEOUT_S} s)`,
        );
      });
      for (const [i, r] of results.entries()) {
        assert.equal(
          r.status,
          "fulfilled",
          `${cases[i][0]}: ${(r as PromiseRejectedResult).reason}`,
        );
      }
    }),
});
