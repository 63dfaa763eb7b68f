/**
 * ssl-cn-as-username: over real TLS and WSS sockets with a client certificate, the broker
 * authorizes by the certificate's CN, whatever username the CONNECT packet claims.
 */
import assert from "node:assert/strict";
import tls from "node:tls";
import { encode } from "../../src/codec/encoder.ts";
import { EXTERNAL, scoped, startBroker } from "../helpers/broker.ts";
import { listenerPort, makeCerts, readerOf, wsOver } from "./helpers.ts";

/** CONNECT claiming another user, then SUBSCRIBE to the CN's topics and the claimed user's. */
function connectAndSubscribe(clientId: string): Uint8Array[] {
  return [
    encode({
      type: "connect",
      protocolName: "MQTT",
      protocolVersion: 4,
      clean: true,
      keepalive: 30,
      clientId,
      username: "claimed",
    }, 4),
    encode({
      type: "subscribe",
      packetId: 1,
      subscriptions: [{ topic: "alice/t", qos: 0 }, { topic: "claimed/t", qos: 0 }],
    } as never, 4),
  ];
}

/** CONNACK accepted, then SUBACK granting alice's topic and refusing the claimed user's. */
const EXPECTED = [0x20, 0x02, 0x00, 0x00, 0x90, 0x04, 0x00, 0x01, 0x00, 0x80];

Deno.test({
  name: "with ssl-cn-as-username the ACL sees the certificate CN, not CONNECT's username",
  ignore: EXTERNAL,
  fn: () =>
    scoped(async (defer) => {
      const certs = await makeCerts();
      defer(() => Deno.remove(certs.dir, { recursive: true }));
      const acl = `${certs.dir}/acl`;
      await Deno.writeTextFile(acl, "user alice\ntopic readwrite alice/#\n");
      const broker = await startBroker({
        args: [
          `--mqttwk.broker.ssl-cert-file=${certs.serverCert}`,
          `--mqttwk.broker.ssl-key-file=${certs.serverKey}`,
          "--mqttwk.broker.ssl-port=0",
          "--mqttwk.broker.wss-port=0",
          "--mqttwk.broker.ssl-client-auth=required",
          `--mqttwk.broker.ssl-ca-file=${certs.ca}`,
          "--mqttwk.broker.ssl-cn-as-username=true",
          `--mqttwk.broker.auth.acl-file=${acl}`,
        ],
      });
      defer(() => broker.stop());
      const tlsPort = await listenerPort(broker, "tls");
      const wssPort = await listenerPort(broker, "wss");
      const open = async (port: number) => {
        const socket = tls.connect({
          host: "127.0.0.1",
          port,
          servername: "localhost",
          ca: await Deno.readTextFile(certs.ca),
          cert: await Deno.readTextFile(certs.clientCert),
          key: await Deno.readTextFile(certs.clientKey),
        });
        defer(() => socket.destroy());
        await new Promise<void>((resolve, reject) => {
          socket.once("secureConnect", resolve);
          socket.once("error", reject);
        });
        return socket;
      };

      const overTls = await open(tlsPort);
      const reader = readerOf(overTls);
      for (const p of connectAndSubscribe("cn-tls")) overTls.write(p);
      assert.deepEqual([...await reader.bytes(EXPECTED.length)], EXPECTED, "over TLS");

      const ws = await wsOver(await open(wssPort));
      for (const p of connectAndSubscribe("cn-wss")) ws.send(p);
      assert.deepEqual([...await ws.payload(EXPECTED.length)], EXPECTED, "over WSS");

      await broker.waitForLog(/wss client 127\.0\.0\.1:\d+ presented certificate CN=alice; using/);
    }),
});
