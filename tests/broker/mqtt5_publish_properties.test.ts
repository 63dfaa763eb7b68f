/**
 * MQTT 5.0 PUBLISH properties end to end in the core: a publisher's message properties reach 5.0
 * subscribers unchanged (3.1.1 subscribers get the message without them), the Payload Format
 * Indicator is checked, a Response Topic must be a topic name, and a will carries its properties.
 */
import assert from "node:assert/strict";
import type { Properties, PublishPacket } from "../../src/codec/packets.ts";
import { ReasonCode } from "../../src/codec/reason_codes.ts";
import {
  assertNone,
  connected,
  drop,
  publish,
  publishAcked,
  subscribe,
  text,
  withBroker,
} from "./harness.ts";
import { connected5, expectDisconnect, hex } from "./mqtt5_harness.ts";

/** Every property a PUBLISH may carry that belongs to the message (3.3.2.3). */
export const ALL_PROPERTIES: Properties = {
  payloadFormatIndicator: 1,
  messageExpiryInterval: 3600,
  contentType: "text/plain; charset=utf-8",
  responseTopic: "replies/ü/1",
  correlationData: new Uint8Array([0, 1, 2, 255, 0]),
  userProperties: [["k", "v1"], ["a", "x"], ["k", "v2"], ["k", "v1"], ["ключ", "😀"]],
};

Deno.test("every message property reaches a 5.0 subscriber unchanged and in order, at QoS 0, 1 and 2 [MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20]", async () => {
  await withBroker(async (b) => {
    const { c: s1 } = await connected5(b, "s1");
    const { c: s2 } = await connected5(b, "s2");
    await subscribe(s1, [["t", 2]]);
    await subscribe(s2, [["t", 2]]);
    const { c: pub } = await connected5(b, "pub");
    for (const qos of [0, 1, 2] as const) {
      await publishAcked(pub, "t", `héllo ${qos}`, qos, { properties: ALL_PROPERTIES });
    }
    for (const s of [s1, s2]) {
      for (const qos of [0, 1, 2] as const) {
        const m = await s.next("publish");
        assert.equal(m.qos, qos);
        assert.equal(text(m), `héllo ${qos}`);
        assert.deepEqual(m.properties, ALL_PROPERTIES);
        if (qos === 1) await s.send({ type: "puback", packetId: m.packetId! });
        if (qos === 2) await s.send({ type: "pubrec", packetId: m.packetId! });
      }
    }
    s1.close();
    s2.close();
    pub.close();
  });
});

Deno.test("the publisher's topic alias is not forwarded, its other properties are [MQTT-3.3.2-7]", async () => {
  await withBroker(async (b) => {
    const { c: sub } = await connected5(b, "sub");
    await subscribe(sub, [["a/b", 0]]);
    const { c: pub } = await connected5(b, "pub");
    await pub.send(publish("a/b", "one", 0, { properties: { topicAlias: 1, contentType: "x" } }));
    await pub.send(publish("", "two", 0, { properties: { topicAlias: 1 } }));
    const one = await sub.next("publish");
    assert.equal(one.topic, "a/b");
    assert.deepEqual(one.properties, { contentType: "x" });
    const two = await sub.next("publish");
    assert.equal(two.topic, "a/b");
    assert.equal(two.properties, undefined, "an alias alone leaves the message without properties");
    sub.close();
    pub.close();
  });
});

Deno.test("a 3.1.1 subscriber of a 5.0 publisher gets the payload without the properties", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "old");
    await subscribe(sub, [["t", 1]]);
    const { c: pub } = await connected5(b, "pub");
    await publishAcked(pub, "t", "for everyone", 1, { properties: ALL_PROPERTIES });
    const m = await sub.next("publish");
    assert.equal(text(m), "for everyone");
    assert.equal(m.properties, undefined);
    sub.close();
    pub.close();
  });
});

Deno.test("a 5.0 subscriber of a 3.1.1 publisher gets the message with no properties", async () => {
  await withBroker(async (b) => {
    const { c: sub } = await connected5(b, "new");
    await subscribe(sub, [["t", 1]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "t", "plain", 1);
    const m = await sub.next("publish");
    assert.equal(text(m), "plain");
    assert.equal(m.properties, undefined);
    sub.close();
    pub.close();
  });
});

Deno.test("a retained message keeps its properties for a later 5.0 subscriber", async () => {
  await withBroker(async (b) => {
    const { c: pub } = await connected5(b, "pub");
    const props = { ...ALL_PROPERTIES, messageExpiryInterval: undefined };
    delete props.messageExpiryInterval;
    await publishAcked(pub, "r", "kept", 1, { retain: true, properties: props });
    const { c: sub } = await connected5(b, "sub");
    await subscribe(sub, [["r", 1]]);
    const m = await sub.next("publish");
    assert.equal(m.retain, true);
    assert.deepEqual(m.properties, props);
    sub.close();
    pub.close();
  });
});

const INVALID_UTF8 = new Uint8Array([0x61, 0xc3, 0x28, 0x62]); // C3 28: a broken 2-byte form

Deno.test("Payload Format Indicator 1 with a payload that is not UTF-8: PUBACK 0x99, not forwarded [MQTT-3.3.2-4] (3.3.2.3.2)", async () => {
  await withBroker(async (b) => {
    const { c: sub } = await connected5(b, "sub");
    await subscribe(sub, [["t", 1]]);
    const { c: pub } = await connected5(b, "pub");
    await pub.send(
      publish("t", INVALID_UTF8, 1, { packetId: 7, properties: { payloadFormatIndicator: 1 } }),
    );
    const ack = await pub.next("puback");
    assert.equal(ack.packetId, 7);
    assert.equal(ack.reasonCode, ReasonCode.PayloadFormatInvalid);
    // The connection stays; a valid message after it arrives alone.
    await publishAcked(pub, "t", "ok ✓", 1, { properties: { payloadFormatIndicator: 1 } });
    const m = await sub.next("publish");
    assert.equal(text(m), "ok ✓");
    await assertNone(sub, "publish");
    sub.close();
    pub.close();
  });
});

Deno.test("Payload Format Indicator 1 with invalid UTF-8 at QoS 2: PUBREC 0x99 ends the flow and frees the packet id [MQTT-4.3.3-4]", async () => {
  await withBroker(async (b) => {
    const { c: sub } = await connected5(b, "sub");
    await subscribe(sub, [["t", 2]]);
    // Receive Maximum 1: a slot still held by the failed flow would refuse the next PUBLISH.
    const { c: pub } = await connected5(b, "pub");
    await pub.send(
      publish("t", INVALID_UTF8, 2, { packetId: 9, properties: { payloadFormatIndicator: 1 } }),
    );
    const rec = await pub.next("pubrec");
    assert.equal(rec.reasonCode, ReasonCode.PayloadFormatInvalid);
    // Its Receive Maximum slot is free: another id is accepted (else DISCONNECT 0x93) ...
    await publishAcked(pub, "t", "other", 2, { packetId: 10 });
    // ... and the same packet id is a new message, delivered (not taken for a resend).
    await publishAcked(pub, "t", "fresh", 2, { packetId: 9 });
    for (const want of ["other", "fresh"]) {
      const m = await sub.next("publish");
      assert.equal(text(m), want);
      await sub.send({ type: "pubrec", packetId: m.packetId! });
    }
    sub.close();
    pub.close();
  }, { options: { receiveMaximum: 1 } });
});

Deno.test("Payload Format Indicator 1 with invalid UTF-8 at QoS 0 is dropped; the connection stays", async () => {
  await withBroker(async (b) => {
    const { c: sub } = await connected5(b, "sub");
    await subscribe(sub, [["t", 0]]);
    const { c: pub } = await connected5(b, "pub");
    await pub.send(publish("t", INVALID_UTF8, 0, { properties: { payloadFormatIndicator: 1 } }));
    await pub.send(publish("t", "next", 0));
    assert.equal(text(await sub.next("publish")), "next");
    await pub.send({ type: "pingreq" });
    await pub.next("pingresp");
    assert.equal(pub.closed, false);
    sub.close();
    pub.close();
  });
});

Deno.test("Payload Format Indicator 0 forwards any bytes; 1 accepts U+0000 and 4-byte forms (RFC 3629)", async () => {
  await withBroker(async (b) => {
    const { c: sub } = await connected5(b, "sub");
    await subscribe(sub, [["t", 1]]);
    const { c: pub } = await connected5(b, "pub");
    await publishAcked(pub, "t", INVALID_UTF8, 1, { properties: { payloadFormatIndicator: 0 } });
    const utf8 = new TextEncoder().encode("a\u0000b😀é");
    await publishAcked(pub, "t", utf8, 1, { properties: { payloadFormatIndicator: 1 } });
    assert.deepEqual((await sub.next("publish")).payload, INVALID_UTF8);
    const m = await sub.next("publish");
    assert.deepEqual(m.payload, utf8);
    assert.equal(m.properties?.payloadFormatIndicator, 1);
    sub.close();
    pub.close();
  });
});

Deno.test("raw bytes: a PUBLISH with Payload Format Indicator 1 and an overlong UTF-8 payload gets PUBACK 0x99", async () => {
  await withBroker(async (b) => {
    const { c: pub } = await connected5(b, "pub");
    // PUBLISH QoS 1, topic "t", id 5, properties: 01 01 (PFI = 1), payload C0 AF (overlong "/").
    await pub.sendBytes(hex("32 0a 0001 74 0005 02 0101 c0af"));
    const ack = await pub.next("puback");
    assert.equal(ack.packetId, 5);
    assert.equal(ack.reasonCode, 0x99);
    pub.close();
  });
});

for (const bad of ["replies/#", "replies/+/x", "+", ""]) {
  Deno.test(`a Response Topic ${JSON.stringify(bad)} is a Protocol Error: DISCONNECT 0x82 [MQTT-3.3.2-14]`, async () => {
    await withBroker(async (b) => {
      const { c: sub } = await connected5(b, "sub");
      await subscribe(sub, [["t", 1]]);
      const { c: pub } = await connected5(b, "pub");
      await pub.trySend(publish("t", "x", 1, { properties: { responseTopic: bad } }));
      await expectDisconnect(pub, ReasonCode.ProtocolError);
      await assertNone(sub, "publish");
      sub.close();
    });
  });
}

Deno.test("raw bytes: a Response Topic with a wildcard ends the connection with DISCONNECT 0x82 [MQTT-3.3.2-14]", async () => {
  await withBroker(async (b) => {
    const { c: pub } = await connected5(b, "pub");
    // PUBLISH QoS 0, topic "t", properties: 08 0003 "r/#", payload "x".
    await pub.trySendBytes(hex("30 0a 0001 74 06 08 0003 722f23 78"));
    await expectDisconnect(pub, ReasonCode.ProtocolError);
  });
});

Deno.test("a will carries its message properties, not its Will Delay Interval (3.1.3.2)", async () => {
  await withBroker(async (b) => {
    const { c: sub } = await connected5(b, "sub");
    await subscribe(sub, [["wills/#", 1]]);
    const old = await connected(b, "old");
    await subscribe(old, [["wills/#", 1]]);
    const willProps: Properties = {
      payloadFormatIndicator: 1,
      messageExpiryInterval: 120,
      contentType: "application/json",
      responseTopic: "back/here",
      correlationData: new Uint8Array([9, 8, 7]),
      userProperties: [["why", "gone"], ["why", "really"]],
    };
    const { c: dying } = await connected5(b, "dying", undefined, {
      will: {
        topic: "wills/dying",
        payload: new TextEncoder().encode('{"bye":1}'),
        qos: 1,
        retain: false,
        properties: { ...willProps, willDelayInterval: 0 },
      },
    });
    await drop(dying);
    const m = await sub.next("publish");
    assert.equal(text(m), '{"bye":1}');
    assert.deepEqual(m.properties, willProps);
    const m4: PublishPacket = await old.next("publish");
    assert.equal(m4.properties, undefined);
    sub.close();
    old.close();
  });
});
