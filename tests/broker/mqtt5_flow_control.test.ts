/**
 * MQTT 5.0 flow control and sizes, both ways: the server's Receive Maximum (0x93) and the
 * client's (the in-flight window), the client's Maximum Packet Size (too-large messages are
 * dropped for that client only), Maximum QoS.
 */
import assert from "node:assert/strict";
import type { PublishPacket } from "../../src/codec/packets.ts";
import { ReasonCode } from "../../src/codec/reason_codes.ts";
import {
  assertNone,
  connected,
  publish,
  publishAcked,
  subscribe,
  text,
  withBroker,
} from "./harness.ts";
import { connected5, expectDisconnect } from "./mqtt5_harness.ts";

Deno.test("more unacknowledged QoS 2 PUBLISHes than Receive Maximum → DISCONNECT 0x93 [MQTT-3.3.4-7]", async () => {
  await withBroker(async (b) => {
    const { c, ack } = await connected5(b, "eager");
    assert.equal(ack.properties?.receiveMaximum, 2);
    for (const id of [1, 2]) {
      await c.send(publish("t", "x", 2, { packetId: id }));
      assert.equal((await c.next("pubrec")).packetId, id);
    }
    // A resend of an id waiting for PUBREL takes no new slot.
    await c.send(publish("t", "x", 2, { packetId: 2, dup: true }));
    assert.equal((await c.next("pubrec")).packetId, 2);
    await c.trySend(publish("t", "x", 2, { packetId: 3 }));
    await expectDisconnect(c, ReasonCode.ReceiveMaximumExceeded);
  }, { options: { receiveMaximum: 2 } });
});

Deno.test("PUBCOMP frees a Receive Maximum slot; QoS 0 never counts [3.3.4]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "paced");
    for (let round = 1; round <= 3; round++) {
      await c.send(publish("t", "x", 2, { packetId: round }));
      await c.next("pubrec");
      for (let i = 0; i < 5; i++) await c.send(publish("t", "q0"));
      await c.send({ type: "pubrel", packetId: round });
      assert.equal((await c.next("pubcomp")).packetId, round);
    }
    // QoS 1 is answered at once here (no durable store), so it never fills the window.
    for (let id = 10; id < 15; id++) await publishAcked(c, "t", "one", 1, { packetId: id });
    assert.equal(c.closed, false);
    c.close();
  }, { options: { receiveMaximum: 1 } });
});

Deno.test("the client's Receive Maximum limits QoS 1 PUBLISHes in flight towards it [MQTT-3.3.4-9]", async () => {
  await withBroker(async (b) => {
    const { c: sub } = await connected5(b, "slow", { receiveMaximum: 2 });
    await subscribe(sub, [["t", 1]]);
    const pub = await connected(b, "pub");
    for (let i = 0; i < 5; i++) await publishAcked(pub, "t", `m${i}`, 1, { packetId: i + 1 });
    const first = [await sub.next("publish"), await sub.next("publish")];
    await assertNone(sub, "publish");
    // Each PUBACK lets one more through, in order.
    const seen = first.map(text);
    let last = first[1];
    await sub.send({ type: "puback", packetId: first[0].packetId! });
    for (let i = 2; i < 5; i++) {
      const m = await sub.next("publish");
      seen.push(text(m));
      await sub.send({ type: "puback", packetId: last.packetId! });
      last = m;
    }
    assert.deepEqual(seen, ["m0", "m1", "m2", "m3", "m4"]);
    sub.close();
    pub.close();
  });
});

Deno.test("a message larger than the client's Maximum Packet Size is dropped for it alone; the connection stays [MQTT-3.1.2-24] [MQTT-3.1.2-25]", async () => {
  await withBroker(async (b) => {
    const { c: small } = await connected5(b, "small", { maximumPacketSize: 64 });
    const { c: large } = await connected5(b, "large");
    const old = await connected(b, "old");
    for (const c of [small, large, old]) await subscribe(c, [["t", 1]]);
    const pub = await connected(b, "pub");
    const dropped = b.stats.dropped;
    await publishAcked(pub, "t", "x".repeat(100), 0);
    await publishAcked(pub, "t", "y".repeat(100), 1, { packetId: 1 });
    await publishAcked(pub, "t", "fits", 1, { packetId: 2 });
    for (const c of [large, old]) {
      assert.equal(text(await c.next("publish")), "x".repeat(100));
      assert.equal(text(await c.next("publish")), "y".repeat(100));
      assert.equal(text(await c.next("publish")), "fits");
    }
    const m = await small.next("publish");
    assert.equal(text(m), "fits", "the small client only gets what fits");
    assert.equal(b.stats.dropped - dropped, 2, "the two too-large ones count as dropped");
    // The QoS 1 one it never got is not in flight: nothing waits for its PUBACK.
    assert.equal(b.sessions.get("small")?.inflight.size, 1);
    await small.send({ type: "puback", packetId: m.packetId! });
    assert.equal(small.closed, false);
    for (const c of [small, large, old, pub]) c.close();
  });
});

Deno.test("a queued message too large for the resumed connection is discarded as if delivered [MQTT-3.1.2-25]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "later", { sessionExpiryInterval: 60 });
    await subscribe(c, [["t", 1]]);
    c.close();
    await c.waitClosed();
    const pub = await connected(b, "pub");
    await publishAcked(pub, "t", "z".repeat(200), 1, { packetId: 1 });
    await publishAcked(pub, "t", "small", 1, { packetId: 2 });
    const { c: back } = await connected5(b, "later", {
      sessionExpiryInterval: 60,
      maximumPacketSize: 100,
    }, { clean: false });
    const m = await back.next("publish");
    assert.equal(text(m), "small");
    assert.equal(b.sessions.get("later")?.queueLength, 0);
    back.close();
    pub.close();
  });
});

Deno.test("Maximum QoS 1: a QoS 2 subscription is granted QoS 1 and delivers at QoS 1 [MQTT-3.2.2-10]", async () => {
  await withBroker(async (b) => {
    const { c: sub } = await connected5(b, "sub");
    assert.deepEqual(await subscribe(sub, [["t", 2]]), [1]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "t", "m", 1);
    const m: PublishPacket = await sub.next("publish");
    assert.equal(m.qos, 1);
    sub.close();
    pub.close();
  }, { options: { maxQos: 1 } });
});
