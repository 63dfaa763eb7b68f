/** Topic names, topic filters and wildcard matching. */
import assert from "node:assert/strict";
import { scoped, startBroker, uid } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import * as raw from "../helpers/raw.ts";
import { PacketType as T } from "../helpers/raw.ts";

Deno.test("topic filters and wildcards", async (t) => {
  const broker = await startBroker();
  try {
    await t.step(
      "'#' does not match $SYS topics, nor does '+/x' match '$SYS/x'",
      () =>
        scoped(async (defer) => {
          const p = uid("sys");
          const sub = await connectMqttJs(broker.url);
          defer(sub.close);
          await sub.subscribe("#", 0);
          await sub.subscribe(`+/${p}`, 0);
          const pub = await connectMqttJs(broker.url);
          defer(pub.close);
          await pub.publish(`$SYS/${p}`, "sys", { qos: 1 });
          await pub.publish(`x/${p}`, "plain", { qos: 1 });
          // Published last on the same connection: a wrongly matched $SYS message came first.
          await sub.inbox.waitFor((m) => m.topic === `x/${p}`);
          const dollar = sub.inbox.messages.filter((m) => m.topic.startsWith("$"));
          assert.deepEqual(dollar.map((m) => m.topic), [], "wildcards matched $ topics");
        }),
    );

    await t.step("'a/#' matches the parent level 'a'", () =>
      scoped(async (defer) => {
        const p = uid("hash");
        const c = await connectMqttJs(broker.url);
        defer(c.close);
        await c.subscribe(`${p}/a/#`, 1);
        await c.publish(`${p}/a`, "parent", { qos: 1 });
        await c.publish(`${p}/a/b/c`, "deep", { qos: 1 });
        await c.publish(`${p}/ab`, "not me", { qos: 1 });
        await c.publish(`${p}/a/marker`, "end", { qos: 1 });
        // Published last on the same connection: anything wrongly matched came before it.
        await c.inbox.waitFor((m) => m.topic === `${p}/a/marker`);
        assert.deepEqual(c.inbox.messages.map((m) => m.topic).sort(), [
          `${p}/a`,
          `${p}/a/b/c`,
          `${p}/a/marker`,
        ]);
      }));

    await t.step("'+' alone and '+/a' are accepted and match", () =>
      scoped(async (defer) => {
        const p = uid("plus");
        const c = await connectMqttJs(broker.url);
        defer(c.close);
        assert.deepEqual(await c.subscribe("+", 1), [1]);
        assert.deepEqual(await c.subscribe(`+/${p}`, 1), [1]);
        await c.publish(p, "single level", { qos: 1 });
        await c.publish(`x/${p}`, "two levels", { qos: 1 });
        await c.publish(`/${p}`, "empty first level", { qos: 1 });
        await c.publish(`x/y/${p}`, "three levels", { qos: 1 });
        await c.publish(`x/${p}/marker`, "end", { qos: 1 });
        await c.publish(`${p}-marker`, "end", { qos: 1 });
        // Published last on the same connection: anything wrongly matched came before it.
        await c.inbox.waitFor((m) => m.topic === `${p}-marker`);
        const mine = c.inbox.messages.filter((m) => m.topic.includes(p)).map((m) => m.topic);
        assert.deepEqual(mine.sort(), [`/${p}`, p, `${p}-marker`, `x/${p}`].sort());
      }));

    await t.step("empty levels: 'a//b' is matched by 'a/+/b'", () =>
      scoped(async (defer) => {
        const p = uid("empty");
        const c = await connectMqttJs(broker.url);
        defer(c.close);
        await c.subscribe(`${p}/a/+/b`, 1);
        await c.publish(`${p}/a//b`, "empty level", { qos: 1 });
        const m = await c.inbox.waitFor((m) => m.topic === `${p}/a//b`);
        assert.equal(m.payload, "empty level");
      }));

    await t.step(
      "an invalid filter gets 0x80 while a valid one in the same SUBSCRIBE is granted",
      () =>
        scoped(async (defer) => {
          const p = uid("invalid");
          const { client } = await raw.rawConnect(broker.host, broker.port, {
            clientId: uid("inv"),
          });
          defer(client.close);
          await client.write(
            raw.subscribe(3, [[`${p}/a/#/b`, 0], [`${p}/ok`, 1], [`${p}/a+`, 0], [`${p}/#x`, 1]]),
          );
          const ack = await client.expect(T.SUBACK);
          assert.equal(raw.hex(ack.bytes), "90 06 00 03 80 01 80 80");
          // The connection stays open and the valid subscription works.
          await client.write(raw.pingreq());
          await client.expect(T.PINGRESP);
          await client.write(
            raw.publish({ topic: `${p}/ok`, payload: "granted", qos: 1, packetId: 9 }),
          );
          const got = [await client.next(), await client.next()];
          const pub = got.find((x) => x.type === T.PUBLISH);
          assert.ok(got.some((x) => x.type === T.PUBACK && x.packetId === 9));
          assert.equal(pub && raw.text(pub), "granted");
        }),
    );

    await t.step(
      "a PUBLISH with a wildcard in its topic name closes the connection",
      () =>
        scoped(async (defer) => {
          const p = uid("wildpub");
          const sub = await connectMqttJs(broker.url);
          defer(sub.close);
          await sub.subscribe(`${p}/#`, 0);
          for (const topic of [`${p}/+`, `${p}/#`, `${p}/a+b`]) {
            const { client } = await raw.rawConnect(broker.host, broker.port, {
              clientId: uid("w"),
            });
            defer(client.close);
            await client.write(raw.publish({ topic, payload: "bad", qos: 0 }), true);
            await client.expectClosed(3_000);
          }
          await sub.publish(`${p}/marker`, "end", { qos: 1 });
          await sub.inbox.waitFor((m) => m.topic === `${p}/marker`);
          assert.deepEqual(sub.inbox.messages.map((m) => m.topic), [`${p}/marker`]);
        }),
    );

    await t.step(
      "topics are case sensitive and a leading '/' is a distinct level",
      () =>
        scoped(async (defer) => {
          const p = uid("case");
          const c = await connectMqttJs(broker.url);
          defer(c.close);
          await c.subscribe(`${p}/Room`, 1);
          await c.publish(`${p}/room`, "lower", { qos: 1 });
          await c.publish(`/${p}/Room`, "leading slash", { qos: 1 });
          await c.publish(`${p}/Room`, "exact", { qos: 1 });
          // Published last on the same connection: anything wrongly matched came before it.
          await c.inbox.waitFor((m) => m.payload === "exact");
          assert.deepEqual(c.inbox.messages.map((m) => m.payload), ["exact"]);
        }),
    );
  } finally {
    await broker.stop();
  }
});
