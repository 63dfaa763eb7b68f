/** Interoperability with the Mosquitto command-line clients (mosquitto_pub / mosquitto_sub). */
import assert from "node:assert/strict";
import { scoped, startBroker, uid } from "../helpers/broker.ts";
import { hostArgs, ignoreWithoutCli, mosquittoPub, mosquittoSub } from "../helpers/cli.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";

const PROTOCOLS = ["mqttv31", "mqttv311"] as const;

Deno.test({
  name: "mosquitto_pub and mosquitto_sub interoperate with the broker",
  ignore: ignoreWithoutCli(),
  fn: async (t) => {
    const broker = await startBroker();
    const conn = hostArgs(broker.host, broker.port);
    try {
      for (const v of PROTOCOLS) {
        for (const qos of [0, 1, 2]) {
          await t.step(
            `mosquitto_pub to mosquitto_sub, -V ${v}, QoS ${qos}`,
            () =>
              scoped(async (defer) => {
                const topic = `${uid("cli")}/${v}/q${qos}`;
                const sub = await mosquittoSub([...conn, "-V", v, "-q", String(qos), "-t", topic]);
                defer(sub.stop);
                await mosquittoPub([
                  ...conn,
                  "-V",
                  v,
                  "-q",
                  String(qos),
                  "-t",
                  topic,
                  "-m",
                  `cli ${v} ${qos}`,
                ]);
                const [m] = await sub.waitForCount(1);
                assert.deepEqual(m, { topic, qos, retain: false, payload: `cli ${v} ${qos}` });
              }),
          );
        }

        await t.step(
          `mosquitto_pub -V ${v} to an mqtt.js subscriber`,
          () =>
            scoped(async (defer) => {
              const topic = `${uid("cli")}/${v}/to-mqttjs`;
              const sub = await connectMqttJs(broker.url);
              defer(sub.close);
              await sub.subscribe(topic, 2);
              for (const qos of [0, 1, 2]) {
                await mosquittoPub([
                  ...conn,
                  "-V",
                  v,
                  "-q",
                  String(qos),
                  "-t",
                  topic,
                  "-m",
                  `m${qos}`,
                ]);
              }
              const got = await sub.inbox.waitForCount(3, (m) => m.topic === topic);
              assert.deepEqual(
                got.map((m) => [m.payload, m.qos]),
                [["m0", 0], ["m1", 1], ["m2", 2]],
              );
            }),
        );

        await t.step(`mqtt.js publisher to mosquitto_sub -V ${v}`, () =>
          scoped(async (defer) => {
            const topic = `${uid("cli")}/${v}/from-mqttjs`;
            const sub = await mosquittoSub([...conn, "-V", v, "-q", "2", "-t", topic]);
            defer(sub.stop);
            const pub = await connectMqttJs(broker.url);
            defer(pub.close);
            await pub.publish(topic, "from mqtt.js", { qos: 2 });
            const [m] = await sub.waitForCount(1);
            assert.deepEqual(m, { topic, qos: 2, retain: false, payload: "from mqtt.js" });
          }));
      }

      await t.step(
        "a retained message from mosquitto_pub -r reaches a later mosquitto_sub",
        () =>
          scoped(async (defer) => {
            const topic = `${uid("cli")}/retained`;
            await mosquittoPub([...conn, "-q", "1", "-r", "-t", topic, "-m", "kept"]);
            defer(() => mosquittoPub([...conn, "-r", "-n", "-t", topic]));
            const sub = await mosquittoSub([...conn, "-q", "1", "-t", topic]);
            defer(sub.stop);
            const [m] = await sub.waitForCount(1);
            assert.deepEqual(m, { topic, qos: 1, retain: true, payload: "kept" });
          }),
      );
    } finally {
      await broker.stop();
    }
  },
});
