/** Publish/subscribe over real TCP with the third-party mqtt.js client. */
import assert from "node:assert/strict";
import { scoped, startBroker, uid } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import type { IClientOptions } from "mqtt";

const VERSIONS: { name: string; opts: IClientOptions }[] = [
  { name: "MQTT 3.1.1", opts: { protocolVersion: 4 } },
  { name: "MQTT 3.1 (MQIsdp)", opts: { protocolVersion: 3, protocolId: "MQIsdp" } },
];

Deno.test("mqtt.js clients publish and subscribe through the broker", async (t) => {
  const broker = await startBroker();
  try {
    for (const v of VERSIONS) {
      for (const qos of [0, 1, 2] as const) {
        await t.step(
          `${v.name}: a message published at QoS ${qos} arrives at QoS ${qos}`,
          () =>
            scoped(async (defer) => {
              const topic = `${uid("pubsub")}/q${qos}`;
              const sub = await connectMqttJs(broker.url, v.opts);
              defer(sub.close);
              const pub = await connectMqttJs(broker.url, v.opts);
              defer(pub.close);
              assert.deepEqual(await sub.subscribe(topic, qos), [qos]);
              await pub.publish(topic, `hello at ${qos}`, { qos });
              const m = await sub.inbox.waitFor((m) => m.topic === topic);
              assert.equal(m.payload, `hello at ${qos}`);
              assert.equal(m.qos, qos);
              assert.equal(m.retain, false);
              assert.equal(m.dup, false);
            }),
        );
      }
    }

    await t.step("MQTT 3.1 and 3.1.1 clients talk to each other", () =>
      scoped(async (defer) => {
        const topic = `${uid("pubsub")}/mixed`;
        const sub31 = await connectMqttJs(broker.url, VERSIONS[1].opts);
        defer(sub31.close);
        const sub311 = await connectMqttJs(broker.url, VERSIONS[0].opts);
        defer(sub311.close);
        await sub31.subscribe(topic, 1);
        await sub311.subscribe(topic, 1);
        await sub31.publish(topic, "from 3.1", { qos: 1 });
        await sub311.publish(topic, "from 3.1.1", { qos: 1 });
        for (const c of [sub31, sub311]) {
          const ms = await c.inbox.waitForCount(2, (m) => m.topic === topic);
          assert.deepEqual(ms.map((m) => m.payload).sort(), ["from 3.1", "from 3.1.1"]);
        }
      }));

    await t.step(
      "delivery QoS is the minimum of publish QoS and subscription QoS",
      () =>
        scoped(async (defer) => {
          const p = uid("pubsub");
          const sub = await connectMqttJs(broker.url);
          defer(sub.close);
          const pub = await connectMqttJs(broker.url);
          defer(pub.close);
          await sub.subscribe(`${p}/sub1`, 1);
          await sub.subscribe(`${p}/sub2`, 2);
          await sub.subscribe(`${p}/sub0`, 0);
          await pub.publish(`${p}/sub1`, "x", { qos: 2 });
          await pub.publish(`${p}/sub2`, "x", { qos: 1 });
          await pub.publish(`${p}/sub0`, "x", { qos: 2 });
          const got = await sub.inbox.waitForCount(3);
          const qosOf = (t: string) => got.find((m) => m.topic === t)?.qos;
          assert.equal(qosOf(`${p}/sub1`), 1);
          assert.equal(qosOf(`${p}/sub2`), 1);
          assert.equal(qosOf(`${p}/sub0`), 0);
        }),
    );

    await t.step(
      "overlapping subscriptions of one client give one delivery at the max QoS",
      () =>
        scoped(async (defer) => {
          const p = uid("overlap");
          const sub = await connectMqttJs(broker.url);
          defer(sub.close);
          const pub = await connectMqttJs(broker.url);
          defer(pub.close);
          await sub.subscribe(`${p}/a/+`, 1);
          await sub.subscribe(`${p}/a/#`, 2);
          await sub.subscribe(`${p}/marker`, 0);
          await pub.publish(`${p}/a/b`, "once", { qos: 2 });
          await pub.publish(`${p}/marker`, "end", { qos: 0 });
          // The marker is published after and travels the same connection, so a second
          // delivery of the message would be here before it.
          await sub.inbox.waitFor((m) => m.topic === `${p}/marker`);
          const got = sub.inbox.on(`${p}/a/b`);
          assert.deepEqual(
            got.map((m) => ({ payload: m.payload, qos: m.qos })),
            [{ payload: "once", qos: 2 }],
          );
        }),
    );

    await t.step("unsubscribing stops delivery", () =>
      scoped(async (defer) => {
        const p = uid("unsub");
        const sub = await connectMqttJs(broker.url);
        defer(sub.close);
        const pub = await connectMqttJs(broker.url);
        defer(pub.close);
        await sub.subscribe(`${p}/t`, 1);
        await sub.subscribe(`${p}/marker`, 1);
        await pub.publish(`${p}/t`, "before", { qos: 1 });
        await sub.inbox.waitFor((m) => m.topic === `${p}/t`);
        await sub.client.unsubscribeAsync(`${p}/t`);
        await pub.publish(`${p}/t`, "after", { qos: 1 });
        await pub.publish(`${p}/marker`, "end", { qos: 1 });
        // Published after "after" on the same connection: had "after" been routed, it came first.
        await sub.inbox.waitFor((m) => m.topic === `${p}/marker`);
        assert.deepEqual(sub.inbox.on(`${p}/t`).map((m) => m.payload), ["before"]);
      }));
  } finally {
    await broker.stop();
  }
});
