/**
 * WSS and WebSocket behind a PROXY protocol header are served on the accepted socket itself:
 * one file descriptor per client in the broker process, no loopback hop to an inner server.
 */
import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { encode } from "../../src/codec/encoder.ts";
import { EXTERNAL, scoped, startBroker } from "../helpers/broker.ts";
import { brokerPid } from "../auth/e2e_helpers.ts";
import { listenerPort, makeCerts, wsOver } from "../transport/helpers.ts";

const CLIENTS = 20;

function openFds(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

function connect(clientId: string): Uint8Array {
  return encode({
    type: "connect",
    protocolName: "MQTT",
    protocolVersion: 4,
    clean: true,
    keepalive: 60,
    clientId,
  }, 4);
}

Deno.test({
  name: "each WSS client and each WebSocket client behind a PROXY header costs one socket",
  ignore: EXTERNAL, // reads the broker's /proc entry
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
          "--mqttwk.broker.websocket-enabled=true",
          "--mqttwk.broker.websocket-port=0",
          "--mqttwk.broker.proxy-protocol=ws",
        ],
      });
      defer(() => broker.stop());
      const wssPort = await listenerPort(broker, "wss");
      const wsPort = await listenerPort(broker, "ws");
      // The temporary certificate directory is on the command line of this broker only.
      const pid = brokerPid(certs.dir);
      const ca = await Deno.readTextFile(certs.ca);

      const sockets: net.Socket[] = [];
      defer(() => sockets.forEach((s) => s.destroy()));
      /** Opens CLIENTS MQTT sessions over `open`; returns how many fds the broker gained. */
      const grow = async (label: string, open: () => Promise<net.Socket>) => {
        const before = openFds(pid);
        for (let i = 0; i < CLIENTS; i++) {
          const socket = await open();
          sockets.push(socket);
          const ws = await wsOver(socket);
          ws.send(connect(`${label}-${i}`));
          assert.deepEqual([...await ws.payload(4)], [0x20, 0x02, 0x00, 0x00]);
        }
        return openFds(pid) - before;
      };

      const wss = await grow("wss", async () => {
        const s = tls.connect({ host: "127.0.0.1", port: wssPort, servername: "localhost", ca });
        await new Promise<void>((resolve, reject) => {
          s.once("secureConnect", resolve);
          s.once("error", reject);
        });
        return s;
      });
      const proxied = await grow("pp", async () => {
        const s = net.connect({ host: "127.0.0.1", port: wsPort });
        await new Promise<void>((resolve, reject) => {
          s.once("connect", resolve);
          s.once("error", reject);
        });
        s.write(`PROXY TCP4 203.0.113.9 127.0.0.1 40000 ${wsPort}\r\n`);
        return s;
      });
      await broker.waitForLog(/client pp-0 connected from 203\.0\.113\.9:40000 via ws /);
      await broker.waitForLog(/client wss-0 connected from 127\.0\.0\.1:\d+ via wss /);
      // Before, each such client held three: the front socket and both ends of the loopback hop.
      assert.ok(wss <= CLIENTS + 2, `${CLIENTS} WSS clients added ${wss} fds`);
      assert.ok(proxied <= CLIENTS + 2, `${CLIENTS} proxied WS clients added ${proxied} fds`);
    }),
});
