/**
 * MQTT 5.0 topic aliases, both ways: a client's aliases resolved per connection, and the
 * broker's own aliases towards a client that allows them (least recently used reassigned).
 */
import assert from "node:assert/strict";
import type { PublishPacket } from "../../src/codec/packets.ts";
import { ReasonCode } from "../../src/codec/reason_codes.ts";
import { connected, publish, publishAcked, subscribe, text, withBroker } from "./harness.ts";
import { connected5, expectDisconnect } from "./mqtt5_harness.ts";

const alias = (n: number) => ({ properties: { topicAlias: n } });

Deno.test("a client's topic alias maps a topic; later PUBLISHes use the alias alone [MQTT-3.3.2-12]", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["#", 1]]);
    const { c: pub } = await connected5(b, "pub");
    await pub.send(publish("long/topic/name", "first", 0, alias(1)));
    await pub.send(publish("", "second", 0, alias(1)));
    await publishAcked(pub, "", "third", 1, alias(1));
    // A new topic for the same alias replaces the mapping (3.3.2.3.4).
    await pub.send(publish("other", "fourth", 0, alias(1)));
    await pub.send(publish("", "fifth", 0, alias(1)));
    const got: string[] = [];
    for (let i = 0; i < 5; i++) {
      const m = await sub.next("publish");
      got.push(`${m.topic}=${text(m)}`);
      if (m.qos === 1) await sub.send({ type: "puback", packetId: m.packetId! });
    }
    assert.deepEqual(got, [
      "long/topic/name=first",
      "long/topic/name=second",
      "long/topic/name=third",
      "other=fourth",
      "other=fifth",
    ]);
    sub.close();
    pub.close();
  });
});

Deno.test("topic aliases are not carried to another connection [MQTT-3.3.2-7]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "p", { sessionExpiryInterval: 60 });
    await c.send(publish("t", "x", 0, alias(1)));
    c.close();
    await c.waitClosed();
    const { c: again } = await connected5(b, "p", { sessionExpiryInterval: 60 }, { clean: false });
    await again.trySend(publish("", "y", 0, alias(1)));
    await expectDisconnect(again, ReasonCode.ProtocolError);
  });
});

Deno.test("the broker uses no topic alias towards a client that allows none [MQTT-3.1.2-27]", async () => {
  await withBroker(async (b) => {
    const { c: sub } = await connected5(b, "sub");
    await subscribe(sub, [["t", 0]]);
    const pub = await connected(b, "pub");
    for (let i = 0; i < 3; i++) await publishAcked(pub, "t", `m${i}`);
    for (let i = 0; i < 3; i++) {
      const m = await sub.next("publish");
      assert.equal(m.topic, "t");
      assert.equal(m.properties?.topicAlias, undefined);
    }
    sub.close();
    pub.close();
  });
});

Deno.test("the broker aliases repeated topics up to the client's Topic Alias Maximum, reusing the least recently used [MQTT-3.1.2-26] [MQTT-3.3.2-11]", async () => {
  await withBroker(async (b) => {
    const { c: sub } = await connected5(b, "sub", { topicAliasMaximum: 2 });
    await subscribe(sub, [["#", 1]]);
    const pub = await connected(b, "pub");
    const sends = ["a", "a", "b", "a", "c", "c", "b", "a"];
    for (const [i, t] of sends.entries()) await publishAcked(pub, t, `${i}`, i % 2 ? 1 : 0);
    const got: [string, number | undefined][] = [];
    const mapping = new Map<number, string>();
    for (let i = 0; i < sends.length; i++) {
      const m: PublishPacket = await sub.next("publish");
      const a = m.properties?.topicAlias;
      assert.ok(a === undefined || (a >= 1 && a <= 2), `alias ${a} within 1..2`);
      if (m.topic) mapping.set(a!, m.topic);
      const topic = m.topic || mapping.get(a!);
      assert.equal(topic, sends[Number(text(m))], `message ${text(m)} resolves to its topic`);
      got.push([m.topic, a]);
      if (m.qos === 1) await sub.send({ type: "puback", packetId: m.packetId! });
    }
    assert.deepEqual(got, [
      ["a", 1], // a gets alias 1
      ["", 1],
      ["b", 2], // b gets alias 2
      ["", 1],
      ["c", 2], // full: b was used least recently, its alias goes to c
      ["", 2],
      ["b", 1], // b again: a's alias (least recently used now) is reassigned
      ["a", 2], // and a takes c's
    ]);
    sub.close();
    pub.close();
  });
});

Deno.test("a QoS 2 PUBLISH carries its topic along with the alias (mqtt.js resolves none at PUBREL)", async () => {
  await withBroker(async (b) => {
    const { c: sub } = await connected5(b, "sub", { topicAliasMaximum: 2 });
    await subscribe(sub, [["t", 2]]);
    const pub = await connected(b, "pub");
    for (const qos of [2, 2, 1] as const) await publishAcked(pub, "t", `q${qos}`, qos);
    const got: [string, number | undefined][] = [];
    for (let i = 0; i < 3; i++) {
      const m = await sub.next("publish");
      got.push([m.topic, m.properties?.topicAlias]);
      if (m.qos === 2) {
        await sub.send({ type: "pubrec", packetId: m.packetId! });
        await sub.next("pubrel");
        await sub.send({ type: "pubcomp", packetId: m.packetId! });
      } else await sub.send({ type: "puback", packetId: m.packetId! });
    }
    assert.deepEqual(got, [["t", 1], ["t", 1], ["", 1]]);
    sub.close();
    pub.close();
  });
});

Deno.test("other PUBLISH properties keep flowing with an outbound alias", async () => {
  await withBroker(async (b) => {
    const { c: sub } = await connected5(b, "sub", { topicAliasMaximum: 5 });
    await subscribe(sub, [["wills/#", 0]]);
    const { c: dying } = await connected5(b, "dying", undefined, {
      will: {
        topic: "wills/x",
        payload: new Uint8Array([1]),
        qos: 0,
        retain: false,
        properties: { contentType: "bin" },
      },
    });
    dying.close();
    const m = await sub.next("publish");
    assert.deepEqual(m.properties, { contentType: "bin", topicAlias: 1 });
    assert.equal(m.topic, "wills/x");
    sub.close();
  });
});

Deno.test("a PUBLISH that fits the client's Maximum Packet Size only without an alias is sent without one, and sets no mapping [MQTT-3.1.2-24] [MQTT-3.3.2-11]", async () => {
  await withBroker(async (b) => {
    // 1 + 1 + topic "t" (3) + property length (1) + 58 payload bytes = 64; an alias adds 3.
    const { c: sub } = await connected5(b, "sub", { topicAliasMaximum: 5, maximumPacketSize: 64 });
    await subscribe(sub, [["#", 0]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "t", "x".repeat(58), 0);
    await publishAcked(pub, "t", "short", 0);
    await publishAcked(pub, "t", "again", 0);
    const first: PublishPacket = await sub.next("publish");
    assert.equal(first.topic, "t");
    assert.equal(first.properties?.topicAlias, undefined, "no room for the alias");
    const second: PublishPacket = await sub.next("publish");
    // No mapping was made by the first one, so the second carries the topic and sets alias 1.
    assert.deepEqual([second.topic, second.properties?.topicAlias, text(second)], [
      "t",
      1,
      "short",
    ]);
    const third: PublishPacket = await sub.next("publish");
    assert.deepEqual([third.topic, third.properties?.topicAlias, text(third)], ["", 1, "again"]);
    sub.close();
    pub.close();
  });
});
