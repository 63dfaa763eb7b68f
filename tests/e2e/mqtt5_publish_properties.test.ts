/**
 * MQTT 5.0 PUBLISH properties end to end over the secure and WebSocket transports, with
 * third-party 5.0 clients: mosquitto_pub over TLS to mqtt.js over TLS, and mqtt.js over ws:// to
 * mqtt.js over wss://, each with a 3.1.1 subscriber beside (payload only).
 */
import { ignoreUnless } from "../helpers/cli.ts";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import mqtt from "mqtt";
import type { IPublishPacket, MqttClient } from "mqtt";
import { EXTERNAL, scoped, startBroker, uid } from "../helpers/broker.ts";
import { listenerPort, makeCerts, tlsBrokerArgs } from "../transport/helpers.ts";
import { waitFor } from "../helpers/wait.ts";

const MOSQUITTO = (() => {
  try {
    new Deno.Command("mosquitto_pub", { args: ["--help"], stdout: "null", stderr: "null" })
      .outputSync();
    return true;
  } catch {
    return false;
  }
})();

/** Connects mqtt.js and records every PUBLISH packet it receives, properties included. */
async function collector(url: string, opts: Record<string, unknown>) {
  const client: MqttClient = await mqtt.connectAsync(url, {
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    ...opts,
  });
  client.on("error", () => {});
  const got: IPublishPacket[] = [];
  client.on("message", (_t, _p, packet) => got.push(packet));
  return { client, got };
}

const tlsArgs = tlsBrokerArgs;

Deno.test({
  name:
    "TLS: mosquitto_pub -V mqttv5 -D properties reach an mqtt.js 5.0 subscriber unchanged, a 3.1.1 one gets the payload [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20]",
  ignore: EXTERNAL || ignoreUnless(MOSQUITTO, "mosquitto_pub/mosquitto_sub"),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    scoped(async (defer) => {
      const certs = await makeCerts();
      defer(() => Deno.remove(certs.dir, { recursive: true }));
      const broker = await startBroker({ args: tlsArgs(certs) });
      defer(() => broker.stop());
      const port = await listenerPort(broker, "tls");
      const ca = await Deno.readTextFile(certs.ca);
      const topic = uid("tls5");
      const url = `mqtts://localhost:${port}`;
      const s5 = await collector(url, { protocolVersion: 5, ca, rejectUnauthorized: true });
      defer(() => s5.client.endAsync());
      const s4 = await collector(url, { protocolVersion: 4, ca, rejectUnauthorized: true });
      defer(() => s4.client.endAsync());
      await s5.client.subscribeAsync(topic, { qos: 1 });
      await s4.client.subscribeAsync(topic, { qos: 1 });
      const out = await new Deno.Command("mosquitto_pub", {
        args: [
          ...["-V", "mqttv5", "-h", "127.0.0.1", "-p", String(port), "--cafile", certs.ca],
          ...["--insecure"], // the certificate names "localhost"; the CA is still checked
          ...["-q", "1", "-t", topic, "-m", "über tls"],
          ...["-D", "publish", "payload-format-indicator", "1"],
          ...["-D", "publish", "message-expiry-interval", "120"],
          ...["-D", "publish", "content-type", "text/plain"],
          ...["-D", "publish", "response-topic", `${topic}/reply`],
          ...["-D", "publish", "correlation-data", "req-42"],
          ...["-D", "publish", "user-property", "k", "v1"],
          ...["-D", "publish", "user-property", "k", "v2"],
          ...["-D", "publish", "user-property", "k", "v1"],
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      const m = await waitFor(() => s5.got[0], { what: "the 5.0 subscriber's message" });
      assert.equal(m.payload.toString(), "über tls");
      const p = m.properties!;
      assert.equal(p.payloadFormatIndicator, true);
      assert.equal(p.messageExpiryInterval, 120);
      assert.equal(p.contentType, "text/plain");
      assert.equal(p.responseTopic, `${topic}/reply`);
      assert.equal(Buffer.from(p.correlationData!).toString(), "req-42");
      // mqtt.js folds repeated names into an array, keeping their order.
      assert.deepEqual({ ...p.userProperties }, { k: ["v1", "v2", "v1"] });
      const m4 = await waitFor(() => s4.got[0], { what: "the 3.1.1 subscriber's message" });
      assert.equal(m4.payload.toString(), "über tls");
      assert.equal(m4.properties, undefined);
    }),
});

Deno.test({
  name:
    "WebSocket: properties from an mqtt.js 5.0 publisher over ws:// reach an mqtt.js 5.0 subscriber over wss:// [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20]",
  ignore: EXTERNAL,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    scoped(async (defer) => {
      const certs = await makeCerts();
      defer(() => Deno.remove(certs.dir, { recursive: true }));
      const broker = await startBroker({
        args: [
          "--mqttwk.broker.websocket-enabled=true",
          "--mqttwk.broker.websocket-port=0",
          ...tlsArgs(certs),
          "--mqttwk.broker.wss-port=0",
        ],
      });
      defer(() => broker.stop());
      const wsPort = await listenerPort(broker, "ws");
      const wssPort = await listenerPort(broker, "wss");
      const ca = await Deno.readTextFile(certs.ca);
      const topic = uid("ws5");
      const s5 = await collector(`wss://localhost:${wssPort}/mqtt`, {
        protocolVersion: 5,
        ca,
        rejectUnauthorized: true,
      });
      defer(() => s5.client.endAsync());
      const s4 = await collector(`ws://127.0.0.1:${wsPort}/mqtt`, { protocolVersion: 4 });
      defer(() => s4.client.endAsync());
      await s5.client.subscribeAsync(topic, { qos: 2 });
      await s4.client.subscribeAsync(topic, { qos: 2 });
      const pub = await mqtt.connectAsync(`ws://127.0.0.1:${wsPort}/mqtt`, {
        protocolVersion: 5,
        reconnectPeriod: 0,
      });
      defer(() => pub.endAsync());
      const properties = {
        payloadFormatIndicator: false,
        messageExpiryInterval: 600,
        contentType: "application/octet-stream",
        responseTopic: `${topic}/answers`,
        correlationData: Buffer.from([0, 1, 254, 255]),
        userProperties: { a: "1", b: ["x", "y"] },
      };
      const payload = Buffer.from([0xff, 0x00, 0xfe]);
      await pub.publishAsync(topic, payload, { qos: 2, properties });
      const m = await waitFor(() => s5.got[0], { what: "the 5.0 subscriber's message" });
      assert.deepEqual([...m.payload as Uint8Array], [0xff, 0x00, 0xfe]);
      const p = m.properties!;
      // mqtt.js sends a false Payload Format Indicator as 0, which is forwarded as sent.
      assert.equal(p.payloadFormatIndicator, false);
      assert.equal(p.messageExpiryInterval, 600);
      assert.equal(p.contentType, "application/octet-stream");
      assert.equal(p.responseTopic, `${topic}/answers`);
      assert.deepEqual([...p.correlationData!], [0, 1, 254, 255]);
      assert.deepEqual({ ...p.userProperties }, { a: "1", b: ["x", "y"] });
      const m4 = await waitFor(() => s4.got[0], { what: "the 3.1.1 subscriber's message" });
      assert.deepEqual([...m4.payload as Uint8Array], [0xff, 0x00, 0xfe]);
      assert.equal(m4.properties, undefined);
    }),
});
