/** Retained messages. */
import assert from "node:assert/strict";
import { scoped, startBroker, uid } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import * as raw from "../helpers/raw.ts";
import { PacketType as T } from "../helpers/raw.ts";

Deno.test("retained messages", async (t) => {
  const broker = await startBroker();
  try {
    await t.step(
      "a new subscriber gets the retained message with RETAIN=1 at min(QoS)",
      () =>
        scoped(async (defer) => {
          const topic = `${uid("ret")}/t`;
          const pub = await connectMqttJs(broker.url);
          defer(pub.close);
          defer(() => pub.publish(topic, "", { qos: 1, retain: true }));
          await pub.publish(topic, "kept", { qos: 1, retain: true });

          for (const [subQos, expectedQos] of [[0, 0], [1, 1], [2, 1]] as const) {
            const sub = await connectMqttJs(broker.url);
            defer(sub.close);
            await sub.subscribe(topic, subQos);
            const m = await sub.inbox.waitFor((m) => m.topic === topic);
            assert.deepEqual(
              { payload: m.payload, retain: m.retain, qos: m.qos },
              { payload: "kept", retain: true, qos: expectedQos },
              `subscription QoS ${subQos}`,
            );
          }
        }),
    );

    await t.step(
      "the retained message arrives byte-exact on a raw subscriber",
      () =>
        scoped(async (defer) => {
          const topic = `${uid("ret")}/raw`;
          const pub = await connectMqttJs(broker.url);
          defer(pub.close);
          defer(() => pub.publish(topic, "", { qos: 1, retain: true }));
          await pub.publish(topic, "r", { qos: 0, retain: true });
          const { client } = await raw.rawConnect(broker.host, broker.port, { clientId: uid("r") });
          defer(client.close);
          await raw.rawSubscribe(client, 1, [[topic, 1]]);
          const m = await client.expect(T.PUBLISH);
          assert.equal(
            raw.hex(m.bytes),
            raw.hex(raw.publish({ topic, payload: "r", retain: true })),
          );
        }),
    );

    await t.step(
      "forwarding to an existing subscriber has RETAIN=0",
      () =>
        scoped(async (defer) => {
          const topic = `${uid("ret")}/live`;
          const sub = await connectMqttJs(broker.url);
          defer(sub.close);
          await sub.subscribe(topic, 1);
          const pub = await connectMqttJs(broker.url);
          defer(pub.close);
          defer(() => pub.publish(topic, "", { qos: 1, retain: true }));
          await pub.publish(topic, "live", { qos: 1, retain: true });
          const m = await sub.inbox.waitFor((m) => m.topic === topic);
          assert.equal(m.payload, "live");
          assert.equal(m.retain, false);
        }),
    );

    await t.step(
      "an empty retained payload clears the retained message",
      () =>
        scoped(async (defer) => {
          const topic = `${uid("ret")}/cleared`;
          const pub = await connectMqttJs(broker.url);
          defer(pub.close);
          await pub.publish(topic, "soon gone", { qos: 1, retain: true });
          await pub.publish(topic, "", { qos: 1, retain: true });
          const sub = await connectMqttJs(broker.url);
          defer(sub.close);
          await sub.subscribe(topic, 1);
          await sub.subscribe(`${topic}/marker`, 1);
          await pub.publish(`${topic}/marker`, "end", { qos: 1 });
          // Retained messages follow their SUBACK, so they would be here before the marker.
          await sub.inbox.waitFor((m) => m.topic === `${topic}/marker`);
          assert.deepEqual(sub.inbox.on(topic), []);
        }),
    );

    await t.step("a newer retained message replaces the older one", () =>
      scoped(async (defer) => {
        const topic = `${uid("ret")}/replaced`;
        const pub = await connectMqttJs(broker.url);
        defer(pub.close);
        defer(() => pub.publish(topic, "", { qos: 1, retain: true }));
        await pub.publish(topic, "old", { qos: 1, retain: true });
        await pub.publish(topic, "new", { qos: 1, retain: true });
        const sub = await connectMqttJs(broker.url);
        defer(sub.close);
        await sub.subscribe(topic, 1);
        await sub.inbox.waitFor((m) => m.topic === topic);
        await sub.sync();
        assert.deepEqual(sub.inbox.on(topic).map((m) => m.payload), ["new"]);
      }));

    await t.step("retained messages match wildcard subscriptions", () =>
      scoped(async (defer) => {
        const p = uid("ret");
        const pub = await connectMqttJs(broker.url);
        defer(pub.close);
        for (const s of ["a/x", "a/y", "b/x"]) {
          defer(() => pub.publish(`${p}/${s}`, "", { qos: 1, retain: true }));
          await pub.publish(`${p}/${s}`, s, { qos: 1, retain: true });
        }
        const sub = await connectMqttJs(broker.url);
        defer(sub.close);
        await sub.subscribe(`${p}/a/+`, 1);
        const got = await sub.inbox.waitForCount(2);
        await sub.sync();
        assert.deepEqual(sub.inbox.messages.map((m) => m.payload).sort(), ["a/x", "a/y"]);
        assert.ok(got.every((m) => m.retain));
      }));

    await t.step(
      "re-subscribing with the same filter re-sends the retained messages",
      () =>
        scoped(async (defer) => {
          const topic = `${uid("ret")}/again`;
          const pub = await connectMqttJs(broker.url);
          defer(pub.close);
          defer(() => pub.publish(topic, "", { qos: 1, retain: true }));
          await pub.publish(topic, "again", { qos: 1, retain: true });
          const { client } = await raw.rawConnect(broker.host, broker.port, {
            clientId: uid("rs"),
          });
          defer(client.close);
          assert.deepEqual(await raw.rawSubscribe(client, 1, [[topic, 0]]), [0]);
          const first = await client.expect(T.PUBLISH);
          assert.equal(raw.text(first), "again");
          assert.equal(first.retain, true);
          assert.deepEqual(await raw.rawSubscribe(client, 2, [[topic, 0]]), [0]);
          const second = await client.expect(T.PUBLISH);
          assert.equal(raw.text(second), "again");
          assert.equal(second.retain, true);
        }),
    );
  } finally {
    await broker.stop();
  }
});
