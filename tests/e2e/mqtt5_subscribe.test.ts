/**
 * MQTT 5.0 subscription options, Subscription Identifiers and ack reason codes end to end with
 * third-party 5.0 clients (mqtt.js, mosquitto_pub / mosquitto_sub -V mqttv5) over TCP.
 */
import { runPahoScript } from "../helpers/paho.ts";
import { ignoreUnless } from "../helpers/cli.ts";
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { EXTERNAL, startBroker, uid } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
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

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(15_000),
  }).output();
  const dec = new TextDecoder();
  if (!out.success) throw new Error(`${cmd} failed: ${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout) + dec.decode(out.stderr);
}

Deno.test({
  name:
    "mqtt.js 5.0: No Local, Retain As Published, Retain Handling 1 and Subscription Identifiers; a 3.1.1 subscriber alongside [MQTT-3.8.3-3] [MQTT-3.3.1-12] [MQTT-3.3.4-3]",
  ignore: EXTERNAL,
  fn: async () => {
    const broker = await startBroker({ args: ["--mqttwk.broker.persistence=memory"] });
    const id = uid("m5s");
    try {
      const pub = await connectMqttJs(broker.url, { clientId: `${id}-p` });
      await pub.publish(`${id}/r`, "retained", { qos: 1, retain: true });
      const got: { payload: string; retain: boolean; ids: unknown }[] = [];
      const c = await mqtt.connectAsync(broker.url, {
        protocolVersion: 5,
        clientId: `${id}-s`,
        reconnectPeriod: 0,
      });
      c.on("message", (_t, payload, packet) =>
        got.push({
          payload: payload.toString(),
          retain: packet.retain,
          ids: packet.properties?.subscriptionIdentifier,
        }));
      const opts = {
        qos: 1 as const,
        nl: true,
        rap: true,
        rh: 1,
        properties: { subscriptionIdentifier: 7 },
      };
      await c.subscribeAsync(`${id}/#`, opts);
      await waitFor(() => got.length === 1, { what: "the retained message" });
      assert.deepEqual(got[0], { payload: "retained", retain: true, ids: 7 });
      // Retain Handling 1: subscribing again sends no retained message.
      await c.subscribeAsync(`${id}/#`, opts);
      await c.publishAsync(`${id}/own`, "own", { qos: 1 });
      const old = await connectMqttJs(broker.url, { clientId: `${id}-o` });
      await old.subscribe(`${id}/#`, 1);
      await pub.publish(`${id}/live`, "live", { qos: 1, retain: true });
      await waitFor(() => got.length === 2, {
        what: "the live message",
        detail: () => JSON.stringify(got),
      });
      assert.deepEqual(got[1], { payload: "live", retain: true, ids: 7 });
      const o = await old.inbox.waitFor((m) => m.payload === "live");
      assert.equal(o.retain, false, "3.1.1: RETAIN 0 on live deliveries");
      await old.sync();
      assert.deepEqual(old.inbox.messages.map((m) => m.payload), ["retained", "live"]);
      await c.endAsync();
      await old.close();
      await pub.close();
    } finally {
      await broker.stop();
    }
  },
});

Deno.test({
  name:
    "mosquitto_sub -V mqttv5 prints the Subscription Identifier; mosquitto_pub -V mqttv5 sees PUBACK 0x10 with nobody subscribed [MQTT-3.3.4-3] [3.4.2.1]",
  ignore: EXTERNAL || ignoreUnless(MOSQUITTO, "mosquitto_pub/mosquitto_sub"),
  fn: async () => {
    const broker = await startBroker({ args: ["--mqttwk.broker.persistence=memory"] });
    const id = uid("m5m");
    const port = String(broker.port);
    try {
      const pubOut = await run("mosquitto_pub", [
        ...["-p", port, "-V", "mqttv5", "-q", "1", "-d", "-t", `${id}/none`, "-m", "x"],
      ]);
      assert.match(pubOut, /received PUBACK \(Mid: \d+, RC:16\)/);
      await run("mosquitto_pub", [
        ...["-p", port, "-V", "mqttv5", "-q", "1", "-r", "-t", `${id}/t`, "-m", "kept"],
      ]);
      const subOut = await run("mosquitto_sub", [
        ...["-p", port, "-V", "mqttv5", "-t", `${id}/#`, "-C", "1", "-W", "10"],
        ...["-D", "subscribe", "subscription-identifier", "12", "-F", "%t %p %j"],
      ]);
      assert.match(subOut, new RegExp(`^${id}/t kept `));
      assert.match(
        subOut,
        /"subscription-identifier"\s*:\s*12|"subscription-identifiers"\s*:\s*\[12\]/,
      );
      const ackOut = await run("mosquitto_pub", [
        ...["-p", port, "-V", "mqttv5", "-q", "1", "-d", "-t", `${id}/t`, "-m", "y"],
      ]);
      assert.match(ackOut, /received PUBACK \(Mid: \d+, RC:16\)/, "no one subscribed now");
    } finally {
      await broker.stop();
    }
  },
});

const PAHO = (() => {
  try {
    return new Deno.Command("/usr/bin/python3", {
      args: ["-c", "import paho.mqtt.subscribeoptions"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
})();

type PahoMessage = {
  topic: string;
  payload: string;
  retain: boolean;
  ids: number[];
  user: [string, string][];
};

Deno.test({
  name:
    "Eclipse Paho (Python) MQTTv5: No Local, Retain As Published, Retain Handling 0/1/2, Subscription Identifiers and User Properties in order [MQTT-3.8.3-3] [MQTT-3.3.1-12] [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11] [MQTT-3.3.4-3] [MQTT-3.3.2-18]",
  ignore: EXTERNAL || ignoreUnless(PAHO, "python3-paho-mqtt 1.6+"),
  fn: async () => {
    const broker = await startBroker({ args: ["--mqttwk.broker.persistence=memory"] });
    const prefix = uid("paho5s");
    try {
      // deno-lint-ignore no-explicit-any
      const r: any = await runPahoScript("paho5_subscribe.py", broker.port, prefix);
      assert.deepEqual(r.retained_published, [true, true]);
      assert.deepEqual(r.granted, [[1], [1], [1], [1]]);
      // Retain Handling 0: the retained message, RETAIN 1, id 7, user properties in order with
      // the duplicate name kept.
      assert.deepEqual(r.retained as PahoMessage[], [{
        topic: `${prefix}/r`,
        payload: "kept",
        retain: true,
        ids: [7],
        user: [["a", "1"], ["b", "2"], ["a", "3"]],
      }]);
      // Retain Handling 1 on an existing subscription and 2: nothing retained.
      assert.deepEqual(r.no_retained, []);
      // No Local: its own "own" is missing; "live" carries both matching ids and RETAIN.
      assert.equal(r.live.length, 1, JSON.stringify(r.live));
      const live = r.live[0] as PahoMessage;
      assert.equal(live.payload, "live");
      assert.equal(live.retain, true);
      assert.deepEqual(live.ids.toSorted(), [8, 9]);
      assert.deepEqual(live.user, [["z", "last"], ["z", "last"]]);
      // Without Retain As Published a live message arrives with RETAIN 0.
      assert.deepEqual(r.plain.map((m: PahoMessage) => [m.payload, m.retain, m.ids]), [
        ["plain", false, []],
      ]);
    } finally {
      await broker.stop();
    }
  },
});
