/**
 * The server's DISCONNECT to a 5.0 client before it closes the connection, with the reason code
 * of why (4.13, 3.14), from raw bytes for the malformed and protocol-error cases; and the
 * client's DISCONNECT reason codes deciding about the will.
 */
import assert from "node:assert/strict";
import { ReasonCode } from "../../src/codec/reason_codes.ts";
import {
  assertNone,
  connected,
  makeBroker,
  MemoryClient,
  subscribe,
  text,
  withBroker,
} from "./harness.ts";
import { connect5, connected5, expectDisconnect, hex } from "./mqtt5_harness.ts";

/** Sends `bytes` from a connected 5.0 client and expects DISCONNECT `code` and the close. */
async function rawError(bytes: string, code: number, options = {}): Promise<void> {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "raw");
    await c.trySendBytes(hex(bytes));
    const d = await expectDisconnect(c, code);
    assert.ok(d.properties?.reasonString, "a Reason String says why");
    assert.equal(b.sessions.has("raw"), false);
  }, { options });
}

Deno.test("a property not allowed in PUBLISH (Session Expiry Interval) → DISCONNECT 0x81 [MQTT-4.13.1-1] [2.2.2.2]", async () => {
  await rawError("30 09 00 01 74 05 11 00 00 00 0a", ReasonCode.MalformedPacket);
});

Deno.test("a property given twice (Payload Format Indicator) → DISCONNECT 0x82 [2.2.2.2]", async () => {
  await rawError("30 08 00 01 74 04 01 00 01 00", ReasonCode.ProtocolError);
});

Deno.test("an unknown property identifier → DISCONNECT 0x81 [2.2.2.2]", async () => {
  await rawError("30 06 00 01 74 02 7f 00", ReasonCode.MalformedPacket);
});

Deno.test("a zero topic alias → DISCONNECT 0x94 [MQTT-3.3.2-8]", async () => {
  await rawError("30 07 00 01 74 03 23 00 00", ReasonCode.TopicAliasInvalid);
});

Deno.test("a topic alias above the server's Topic Alias Maximum → DISCONNECT 0x94 [MQTT-3.3.2-9]", async () => {
  await rawError("30 07 00 01 74 03 23 00 0b", ReasonCode.TopicAliasInvalid);
});

Deno.test("any topic alias when the server allows none → DISCONNECT 0x94 [MQTT-3.2.2-17]", async () => {
  await rawError("30 07 00 01 74 03 23 00 01", ReasonCode.TopicAliasInvalid, {
    topicAliasMaximum: 0,
  });
});

Deno.test("an empty topic with an alias that has no mapping → DISCONNECT 0x82 [3.3.2.3.4]", async () => {
  await rawError("30 06 00 00 03 23 00 01", ReasonCode.ProtocolError);
});

Deno.test("a client's PUBLISH with a Subscription Identifier → DISCONNECT 0x82 [MQTT-3.3.4-6]", async () => {
  await rawError("30 06 00 01 74 02 0b 01", ReasonCode.ProtocolError);
});

Deno.test("a PUBLISH with QoS 3 → DISCONNECT 0x81 [MQTT-3.3.1-4]", async () => {
  await rawError("36 05 00 01 74 00 01", ReasonCode.MalformedPacket);
});

Deno.test("a PUBLISH with an invalid topic name → DISCONNECT 0x90 [MQTT-3.3.2-2]", async () => {
  await rawError("30 05 00 02 61 23 00", ReasonCode.TopicNameInvalid);
});

Deno.test("a second CONNECT → DISCONNECT 0x82 [MQTT-3.1.0-2]", async () => {
  await rawError("10 0d 00 04 4d 51 54 54 05 02 00 00 00 00 00", ReasonCode.ProtocolError);
});

Deno.test("a packet larger than the server's Maximum Packet Size → DISCONNECT 0x95 [MQTT-3.2.2-15]", async () => {
  await withBroker(async (b) => {
    const { c, ack } = await connected5(b, "big");
    assert.equal(ack.properties?.maximumPacketSize, 100);
    await c.trySend({
      type: "publish",
      topic: "t",
      payload: new Uint8Array(200),
      qos: 0,
      retain: false,
      dup: false,
    });
    await expectDisconnect(c, ReasonCode.PacketTooLarge);
  }, { options: { maxPacketSize: 100 } });
});

Deno.test("a PUBLISH above Maximum QoS → DISCONNECT 0x9B [MQTT-3.2.2-11]", async () => {
  await rawError("34 06 00 01 74 00 01 00", ReasonCode.QoSNotSupported, { maxQos: 1 });
});

Deno.test("a retained PUBLISH while retain is unavailable → DISCONNECT 0x9A [MQTT-3.2.2-14]", async () => {
  await rawError("31 04 00 01 74 00", ReasonCode.RetainNotSupported, { retainAvailable: false });
});

Deno.test("the old connection of a taken-over 5.0 session gets DISCONNECT 0x8E [MQTT-3.1.4-3]", async () => {
  await withBroker(async (b) => {
    const { c: first } = await connected5(b, "same", { sessionExpiryInterval: 60 });
    const { c: second, ack } = await connected5(b, "same", { sessionExpiryInterval: 60 }, {
      clean: false,
    });
    assert.equal(ack.sessionPresent, true);
    await expectDisconnect(first, ReasonCode.SessionTakenOver);
    assert.equal(second.closed, false);
    second.close();
  });
});

Deno.test("a taken-over 3.1.1 connection is only closed, with no DISCONNECT", async () => {
  await withBroker(async (b) => {
    const first = await connected(b, "same");
    const second = await connected(b, "same");
    await first.waitClosed();
    assert.deepEqual(first.pending("disconnect"), []);
    second.close();
  });
});

Deno.test("keepalive timeout → DISCONNECT 0x8D, enforced with the Server Keep Alive [MQTT-3.1.2-22] [MQTT-3.2.2-21]", async () => {
  await withBroker(async (b) => {
    // Asks for no keepalive; the server imposes 1 s, so 1.5 s of silence ends it.
    const { c, ack } = await connected5(b, "idle", undefined, { keepalive: 0 });
    assert.equal(ack.properties?.serverKeepAlive, 1);
    const started = Date.now();
    await expectDisconnect(c, ReasonCode.KeepAliveTimeout);
    assert.ok(Date.now() - started >= 1400, "not before 1.5 x keepalive");
  }, { options: { maxKeepalive: 1 } });
});

Deno.test("server shutdown → DISCONNECT 0x8B to 5.0 clients, a plain close for 3.1.1", async () => {
  const b = makeBroker();
  await b.start();
  const { c: five } = await connected5(b, "five");
  const old = await connected(b, "old");
  await b.close();
  await expectDisconnect(five, ReasonCode.ServerShuttingDown);
  await old.waitClosed();
  assert.deepEqual(old.pending("disconnect"), []);
});

/** A 5.0 client with a will on "will", and a watcher of that topic. */
async function withWill(
  fn: (c: MemoryClient, watch: MemoryClient) => Promise<void>,
): Promise<void> {
  await withBroker(async (b) => {
    const { c: watch } = await connected5(b, "watch");
    await subscribe(watch, [["will", 0]]);
    const c = new MemoryClient(b, 5);
    await c.send(connect5("dying", {
      will: { topic: "will", payload: new TextEncoder().encode("w"), qos: 0, retain: false },
    }));
    assert.equal((await c.next("connack")).reasonCode, 0);
    await fn(c, watch);
    watch.close();
  });
}

Deno.test("DISCONNECT 0x04 (with Will Message) publishes the will [3.14.2.1]", async () => {
  await withWill(async (c, watch) => {
    await c.send({ type: "disconnect", reasonCode: ReasonCode.DisconnectWithWillMessage });
    await c.waitClosed();
    assert.equal(text(await watch.next("publish")), "w");
  });
});

Deno.test("DISCONNECT 0x00 discards the will [MQTT-3.14.4-3]", async () => {
  await withWill(async (c, watch) => {
    await c.send({ type: "disconnect" });
    await c.waitClosed();
    await assertNone(watch, "publish");
  });
});

Deno.test("DISCONNECT with an error code keeps the will, which is published [MQTT-3.1.2-8]", async () => {
  await withWill(async (c, watch) => {
    await c.send({ type: "disconnect", reasonCode: ReasonCode.UnspecifiedError });
    await c.waitClosed();
    assert.equal(text(await watch.next("publish")), "w");
  });
});

Deno.test("a protocol error publishes the will after the server's DISCONNECT [MQTT-3.1.2-8]", async () => {
  await withWill(async (c, watch) => {
    await c.sendBytes(hex("30 07 00 01 74 03 23 00 00"));
    await expectDisconnect(c, ReasonCode.TopicAliasInvalid);
    assert.equal(text(await watch.next("publish")), "w");
  });
});
