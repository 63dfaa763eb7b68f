/**
 * MQTT 5.0 end to end with third-party 5.0 clients: mqtt.js (`protocolVersion: 5`),
 * mosquitto_pub / mosquitto_sub (`-V mqttv5` with `-D` properties) and Eclipse Paho for Python
 * (MQTTv5), against the real broker process over TCP.
 */
import { runPahoScript } from "../helpers/paho.ts";
import { ignoreUnless } from "../helpers/cli.ts";
import assert from "node:assert/strict";
import { EXTERNAL, startBroker, uid } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { waitFor } from "../helpers/wait.ts";
import mqtt from "mqtt";

function hasCommand(cmd: string, args: string[]): boolean {
  try {
    new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync();
    return true;
  } catch {
    return false;
  }
}

const MOSQUITTO = hasCommand("mosquitto_pub", ["--help"]);
const PYTHON = hasCommand("/usr/bin/python3", ["-c", "import paho.mqtt.client"]) &&
  new Deno.Command("/usr/bin/python3", { args: ["-c", "import paho.mqtt.client"] }).outputSync()
    .success;

/** The CONNACK mqtt.js received (kept on the client, not in its typings). */
// deno-lint-ignore no-explicit-any
const connackOf = (c: unknown) => (c as any).connackPacket;

Deno.test({
  name:
    "mqtt.js 5.0: CONNACK properties, QoS 0/1/2 with topic aliases both ways, a resumed session",
  ignore: EXTERNAL,
  fn: async () => {
    const broker = await startBroker({ args: ["--mqttwk.broker.persistence=memory"] });
    const id = uid("m5");
    try {
      const sub = await connectMqttJs(broker.url, {
        protocolVersion: 5,
        clientId: `${id}-s`,
        clean: false,
        properties: { sessionExpiryInterval: 300, topicAliasMaximum: 5 },
      });
      const ack = connackOf(sub.client);
      assert.equal(ack.returnCode ?? ack.reasonCode, 0);
      assert.equal(ack.properties.topicAliasMaximum, 10);
      assert.equal(ack.properties.maximumPacketSize, 1048576);
      // Shared Subscription Available 1 is the default: not sent.
      assert.equal(ack.properties.sharedSubscriptionAvailable, undefined);
      await sub.subscribe(`${id}/#`, 2);
      const old = await connectMqttJs(broker.url, { clientId: `${id}-old` });
      await old.subscribe(`${id}/#`, 2);
      // mqtt.js assigns topic aliases itself once the CONNACK allows them.
      const pub = await connectMqttJs(broker.url, {
        protocolVersion: 5,
        clientId: `${id}-p`,
        autoAssignTopicAlias: true,
      });
      for (const qos of [0, 1, 2] as const) {
        await pub.publish(`${id}/same/topic`, `q${qos}`, { qos });
      }
      for (const c of [sub, old]) {
        const got = await c.inbox.waitForCount(3);
        assert.deepEqual(
          got.map((m) => [m.topic, m.payload, m.qos]),
          [0, 1, 2].map((q) => [`${id}/same/topic`, `q${q}`, q]),
        );
      }
      await sub.close();
      await pub.publish(`${id}/same/topic`, "while away", { qos: 1 });
      // The handlers go on before the CONNACK: the queued message follows it at once.
      const got: string[] = [];
      let present: boolean | undefined;
      const back = mqtt.connect(broker.url, {
        protocolVersion: 5,
        clientId: `${id}-s`,
        clean: false,
        reconnectPeriod: 0,
        properties: { sessionExpiryInterval: 0 },
      });
      back.on("connect", (ack) => present = ack.sessionPresent);
      back.on("message", (t, payload) => got.push(`${t} ${new TextDecoder().decode(payload)}`));
      back.on("error", () => {});
      await waitFor(() => got.length > 0, { what: "the message queued while away" });
      assert.equal(present, true);
      assert.deepEqual(got, [`${id}/same/topic while away`]);
      await back.endAsync();
      for (const c of [old, pub]) await c.close();
    } finally {
      await broker.stop();
    }
  },
});

async function run(cmd: string, args: string[], stdin?: string): Promise<string> {
  const p = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(15_000),
  }).spawn();
  if (stdin !== undefined) {
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await p.output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

Deno.test({
  name: "mosquitto_pub / mosquitto_sub -V mqttv5: session expiry, topic aliases, user properties",
  ignore: EXTERNAL || ignoreUnless(MOSQUITTO, "mosquitto_pub/mosquitto_sub"),
  fn: async () => {
    const broker = await startBroker({ args: ["--mqttwk.broker.persistence=memory"] });
    const id = uid("mosq5");
    const common = ["-V", "mqttv5", "-h", "127.0.0.1", "-p", String(broker.port)];
    const subArgs = [
      ...common,
      ...["-i", `${id}-s`, "-c", "-q", "1", "-t", `${id}/#`],
      // -x: the Session Expiry Interval (infinite by default with -c; capped by the broker).
      ...["-x", "300"],
      // No topic-alias-maximum: libmosquitto 2.0.11 sends one when asked, yet refuses a PUBLISH
      // with an empty topic (an alias alone) as a protocol error. Outbound aliases are tested
      // with mqtt.js above.
    ];
    try {
      // Subscribes, and exits once SUBACK came (-E): the session stays (expiry 300 s).
      await run("mosquitto_sub", [...subArgs, "-E"]);
      // Two lines from one mosquitto_pub: the second PUBLISH carries the alias alone.
      await run("mosquitto_pub", [
        ...common,
        ...["-q", "1", "-t", `${id}/aliased`, "-l"],
        ...["-D", "publish", "topic-alias", "1"],
        ...["-D", "publish", "user-property", "k", "v"],
      ], "one\ntwo\n");
      await run("mosquitto_pub", [...common, "-q", "1", "-t", `${id}/plain`, "-m", "three"]);
      // The resumed session delivers what was queued, the aliased topic resolved.
      const out = await run("mosquitto_sub", [...subArgs, "-C", "3", "-W", "10", "-F", "%t %p"]);
      assert.deepEqual(out.trim().split("\n"), [
        `${id}/aliased one`,
        `${id}/aliased two`,
        `${id}/plain three`,
      ]);
    } finally {
      await broker.stop();
    }
  },
});

Deno.test({
  name: "Eclipse Paho (Python) MQTTv5: CONNACK, QoS 0/1/2, properties, a resumed session, UNSUBACK",
  ignore: EXTERNAL || ignoreUnless(PYTHON, "python3-paho-mqtt"),
  fn: async () => {
    const broker = await startBroker({ args: ["--mqttwk.broker.persistence=memory"] });
    const prefix = uid("paho5");
    try {
      // deno-lint-ignore no-explicit-any
      const r: any = await runPahoScript("paho5_client.py", broker.port, prefix);
      assert.equal(r.rc, 0);
      assert.equal(r.connack.TopicAliasMaximum, 10);
      assert.equal(r.connack.MaximumPacketSize, 1048576);
      assert.deepEqual(r.granted, [2]);
      assert.deepEqual(r.completed, [true, true, true, true]);
      assert.deepEqual(
        r.received.map((m: { topic: string; qos: number }) => [m.topic, m.qos]),
        [[`${prefix}/q0`, 0], [`${prefix}/q1`, 1], [`${prefix}/q2`, 2]],
      );
      assert.deepEqual(r.received[0].props, {}, "paho asked for no aliases: none sent");
      assert.equal(r.present, 1);
      assert.deepEqual(r.later.map((m: { payload: string }) => m.payload), ["while away"]);
      assert.deepEqual(r.unsuback, [0x00, 0x11]);
    } finally {
      await broker.stop();
    }
  },
});
