/**
 * MQTT 5.0 over every transport: TLS with the Mosquitto clients (`-V mqttv5`) and mqtt.js, mutual
 * TLS with the certificate's CN as username, WebSocket and secure WebSocket with mqtt.js
 * (`protocolVersion: 5`, subprotocol "mqtt"): topic aliases both ways and user properties carried
 * from the publisher (a 5.0 will) to the subscriber.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { IClientOptions, IPublishPacket } from "mqtt";
import { EXTERNAL, scoped, startBroker, uid } from "../helpers/broker.ts";
import { ignoreWithoutCli, mosquittoPub, mosquittoSub } from "../helpers/cli.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { waitFor } from "../helpers/wait.ts";
import { listenerPort, makeCerts, tlsBrokerArgs } from "../transport/helpers.ts";

const ignore = EXTERNAL || ignoreWithoutCli();

const tlsArgs = tlsBrokerArgs;

/**
 * A 5.0 mqtt.js client that keeps every PUBLISH packet it receives (with the topic it resolved
 * from an alias) and sends.
 */
async function v5(url: string, opts: IClientOptions = {}) {
  const c = await connectMqttJs(url, { protocolVersion: 5, ...opts });
  const packets: IPublishPacket[] = [];
  const topics: string[] = [];
  const sent: { topic: string; alias?: number }[] = [];
  c.client.on("message", (topic, _p, packet) => {
    topics.push(topic);
    packets.push(packet);
  });
  c.client.on("packetsend", (p) => {
    if (p.cmd === "publish") sent.push({ topic: p.topic, alias: p.properties?.topicAlias });
  });
  return { c, packets, topics, sent };
}

/**
 * Topic aliases both ways [MQTT-3.3.2-12]: the publisher sets them (autoAssignTopicAlias), the
 * broker uses its own towards the subscriber, which allows 5; then a 5.0 will with user
 * properties (in order, a name repeated) reaches the subscriber [MQTT-3.3.2-18].
 */
async function aliasesAndUserProperties(
  subUrl: string,
  pubUrl: string,
  opts: IClientOptions,
  defer: (f: () => unknown) => void,
) {
  const topic = uid("m5t");
  const sub = await v5(subUrl, { ...opts, properties: { topicAliasMaximum: 5 } });
  defer(() => sub.c.close());
  await sub.c.subscribe(`${topic}/#`, 1);
  const pub = await v5(pubUrl, { ...opts, autoAssignTopicAlias: true });
  defer(() => pub.c.close());
  for (let i = 0; i < 3; i++) await pub.c.publish(`${topic}/same`, `n${i}`, { qos: 1 });
  await waitFor(() => sub.packets.length >= 3, { what: "three messages" });
  assert.deepEqual(sub.packets.map((p) => String(p.payload)), ["n0", "n1", "n2"]);
  assert.deepEqual(sub.topics, Array(3).fill(`${topic}/same`));
  // Outbound: the broker's alias on every copy, the topic itself only on the first.
  const aliases = sub.packets.map((p) => p.properties?.topicAlias);
  assert.ok(aliases.every((a) => a !== undefined && a >= 1 && a <= 5), `aliases ${aliases}`);
  assert.deepEqual(sub.packets.map((p) => p.topic === ""), [false, true, true]);
  // Inbound: the publisher sent the later ones by alias alone, which the broker resolved.
  assert.deepEqual(pub.sent.map((p) => p.topic === "" && p.alias !== undefined), [
    false,
    true,
    true,
  ]);

  const dying = await connectMqttJs(pubUrl, {
    ...opts,
    protocolVersion: 5,
    will: {
      topic: `${topic}/will`,
      payload: Buffer.from("gone"),
      qos: 1,
      retain: false,
      properties: { userProperties: { site: ["a", "b"], k: "v" }, contentType: "text/plain" },
    },
  });
  dying.client.stream.destroy();
  await waitFor(() => sub.packets.length >= 4, { what: "the will" });
  const w = sub.packets[3];
  assert.equal(String(w.payload), "gone");
  assert.deepEqual({ ...w.properties?.userProperties }, { site: ["a", "b"], k: "v" });
  assert.equal(w.properties?.contentType, "text/plain");
}

Deno.test({
  name: "5.0 over TLS: mosquitto -V mqttv5 round trip, mqtt.js topic aliases and user properties",
  ignore,
  fn: () =>
    scoped(async (defer) => {
      const certs = await makeCerts();
      defer(() => Deno.remove(certs.dir, { recursive: true }));
      const broker = await startBroker({ args: tlsArgs(certs) });
      defer(() => broker.stop());
      const port = await listenerPort(broker, "tls");
      const conn = ["-h", "127.0.0.1", "-p", String(port), "--cafile", certs.ca, "-V", "mqttv5"];
      const topic = uid("tls5");
      const sub = await mosquittoSub([...conn, "-t", topic, "-q", "1", "-i", uid("s")]);
      defer(() => sub.stop());
      await mosquittoPub([...conn, "-t", topic, "-q", "1", "-m", "v5 over tls"]);
      const [m] = await sub.waitForCount(1);
      assert.equal(m.payload, "v5 over tls");
      await broker.waitForLog(/connected from 127\.0\.0\.1:\d+ via tls \(v5\.0/);

      const ca = await Deno.readTextFile(certs.ca);
      const url = `mqtts://localhost:${port}`;
      await aliasesAndUserProperties(url, url, { ca, rejectUnauthorized: true }, defer);
    }),
});

Deno.test({
  name: "5.0 over mutual TLS: the certificate's CN is the username the ACL sees",
  ignore,
  fn: () =>
    scoped(async (defer) => {
      const certs = await makeCerts();
      defer(() => Deno.remove(certs.dir, { recursive: true }));
      const acl = `${certs.dir}/acl`;
      // Each user may use only users/<own name>/#: the CN (alice) opens it, a claimed name not.
      await Deno.writeTextFile(acl, "pattern readwrite users/%u/#\n");
      const broker = await startBroker({
        args: tlsArgs(certs, [
          "--mqttwk.broker.ssl-client-auth=required",
          `--mqttwk.broker.ssl-ca-file=${certs.ca}`,
          "--mqttwk.broker.ssl-cn-as-username=true",
          `--mqttwk.broker.auth.acl-file=${acl}`,
        ]),
      });
      defer(() => broker.stop());
      const port = await listenerPort(broker, "tls");
      const conn = [
        "-h",
        "127.0.0.1",
        "-p",
        String(port),
        "--cafile",
        certs.ca,
        "-V",
        "mqttv5",
        "--cert",
        certs.clientCert,
        "--key",
        certs.clientKey,
      ]; // deno-fmt-ignore
      const subId = uid("cn-sub");
      const sub = await mosquittoSub([...conn, "-t", "users/alice/#", "-q", "1", "-i", subId]);
      defer(() => sub.stop());
      // Claims to be "claimed": only as alice (its CN) may it write users/alice/x.
      await mosquittoPub([...conn, "-t", "users/alice/x", "-q", "1", "-u", "claimed", "-m", "cn"]);
      const [m] = await sub.waitForCount(1);
      assert.equal(m.topic, "users/alice/x");
      assert.equal(m.payload, "cn");
      await broker.waitForLog(/presented certificate CN=alice; using/);
      await broker.waitForLog(new RegExp(`client ${subId} connected .* via tls \\(v5\\.0`));
    }),
});

Deno.test({
  name: "5.0 over WebSocket and secure WebSocket: subprotocol mqtt, topic aliases, user properties",
  ignore: EXTERNAL,
  fn: () =>
    scoped(async (defer) => {
      const certs = await makeCerts();
      defer(() => Deno.remove(certs.dir, { recursive: true }));
      const broker = await startBroker({
        args: tlsArgs(certs, [
          "--mqttwk.broker.websocket-enabled=true",
          "--mqttwk.broker.websocket-port=0",
          "--mqttwk.broker.wss-port=0",
        ]),
      });
      defer(() => broker.stop());
      const wsPort = await listenerPort(broker, "ws");
      const wssPort = await listenerPort(broker, "wss");
      const ca = await Deno.readTextFile(certs.ca);

      // The 5.0 standard's subprotocol name is "mqtt" (6.0), the one mqtt.js offers.
      const ws = new WebSocket(`ws://127.0.0.1:${wsPort}/mqtt`, ["mqtt"]);
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = reject;
      });
      assert.equal(ws.protocol, "mqtt");
      ws.close();
      await new Promise((r) => (ws.onclose = r));

      const opts = { ca, rejectUnauthorized: true } as IClientOptions;
      // Subscriber on ws, publisher on wss, and the other way round.
      await aliasesAndUserProperties(
        `ws://127.0.0.1:${wsPort}/mqtt`,
        `wss://localhost:${wssPort}/mqtt`,
        opts,
        defer,
      );
      await aliasesAndUserProperties(
        `wss://localhost:${wssPort}/mqtt`,
        `ws://127.0.0.1:${wsPort}/mqtt`,
        opts,
        defer,
      );
      await broker.waitForLog(/via wss \(v5\.0/);
      await broker.waitForLog(/via ws \(v5\.0/);
    }),
});
