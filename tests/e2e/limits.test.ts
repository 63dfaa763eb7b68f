/** Configured limits: maximum packet size. */
import assert from "node:assert/strict";
import { EXTERNAL, scoped, startBroker, uid } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import * as raw from "../helpers/raw.ts";
import { PacketType as T } from "../helpers/raw.ts";

Deno.test({
  name: "a PUBLISH larger than the maximum packet size closes that connection only",
  ignore: EXTERNAL, // needs --mqttwk.broker.max-packet-size
  fn: async (t) => {
    const broker = await startBroker({ args: ["--mqttwk.broker.max-packet-size=1024"] });
    try {
      await t.step("a PUBLISH well under the limit is delivered", () =>
        scoped(async (defer) => {
          const topic = `${uid("size")}/small`;
          const sub = await connectMqttJs(broker.url);
          defer(sub.close);
          await sub.subscribe(topic, 1);
          const { client } = await raw.rawConnect(broker.host, broker.port, { clientId: uid("s") });
          defer(client.close);
          await client.write(raw.publish({ topic, payload: "x".repeat(500), qos: 1, packetId: 1 }));
          await client.expect(T.PUBACK);
          const m = await sub.inbox.waitFor((m) => m.topic === topic);
          assert.equal(m.payload.length, 500);
        }));

      await t.step(
        "a PUBLISH over the limit closes the connection and is not delivered",
        () =>
          scoped(async (defer) => {
            const topic = `${uid("size")}/big`;
            const sub = await connectMqttJs(broker.url);
            defer(sub.close);
            await sub.subscribe(`${topic}/#`, 1);
            await sub.subscribe(topic, 1);
            const { client } = await raw.rawConnect(broker.host, broker.port, {
              clientId: uid("b"),
            });
            defer(client.close);
            await client.write(
              raw.publish({ topic, payload: "y".repeat(4000), qos: 1, packetId: 1 }),
              true,
            );
            const before = await client.expectClosed(3_000);
            assert.deepEqual(before.map(raw.describe), [], "no PUBACK for the oversized PUBLISH");

            // The broker keeps serving the others.
            await sub.publish(`${topic}/after`, "still here", { qos: 1 });
            await sub.inbox.waitFor((m) => m.topic === `${topic}/after`);
            assert.deepEqual(sub.inbox.on(topic), [], "the oversized message was delivered");
            const other = await connectMqttJs(broker.url);
            defer(other.close);
            await other.publish(`${topic}/after`, "new client", { qos: 1 });
            await sub.inbox.waitFor((m) => m.payload === "new client");
          }),
      );

      await t.step(
        "an oversized packet announced by its header alone is refused",
        () =>
          scoped(async (defer) => {
            const { client } = await raw.rawConnect(broker.host, broker.port, {
              clientId: uid("h"),
            });
            defer(client.close);
            // Fixed header announcing 1 MiB of PUBLISH, then only a few bytes: the broker must not
            // wait for (or buffer) the rest.
            await client.write(raw.concat([0x30], raw.remainingLength(1 << 20), raw.str("t"), [1]));
            await client.expectClosed(3_000);
          }),
      );
    } finally {
      await broker.stop();
    }
  },
});

Deno.test({
  name:
    "by default a client is stopped at 10,000 subscriptions and the rest of the SUBSCRIBE is refused",
  ignore: EXTERNAL, // MqttWk's default limit
  async fn() {
    const broker = await startBroker();
    try {
      const { client } = await raw.rawConnect(broker.host, broker.port, { clientId: uid("subs") });
      try {
        const prefix = uid("many");
        // 9,990 filters in packets of 999, then one SUBSCRIBE crossing the limit.
        for (let packetId = 1; packetId <= 10; packetId++) {
          const subs: [string, number][] = [];
          for (let i = 0; i < 999; i++) subs.push([`${prefix}/${packetId}/${i}`, 0]);
          const granted = await raw.rawSubscribe(client, packetId, subs);
          assert.ok(granted.every((g) => g === 0), `packet ${packetId} granted in full`);
        }
        const last: [string, number][] = [];
        for (let i = 0; i < 20; i++) last.push([`${prefix}/last/${i}`, 0]);
        const granted = await raw.rawSubscribe(client, 11, last);
        assert.deepEqual(granted, [...Array(10).fill(0), ...Array(10).fill(0x80)]);
        assert.deepEqual(
          await raw.rawSubscribe(client, 12, [[`${prefix}/1/0`, 1]]),
          [1],
          "replacing an existing subscription still works at the limit",
        );
        await broker.waitForLog(/subscription limit 10000 reached .* 10 filter\(s\) refused/);
      } finally {
        await client.close();
      }
    } finally {
      await broker.stop();
    }
  },
});
