/** PUBLISH at QoS 2, both directions: PUBLISH / PUBREC / PUBREL / PUBCOMP. */
import assert from "node:assert/strict";
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

Deno.test("an inbound QoS 2 flow: PUBREC, then PUBCOMP for the PUBREL, same packet id [MQTT-4.3.3-2]", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["q2/in", 2]]);
    const pub = await connected(b, "pub");
    await pub.send(publish("q2/in", "exactly", 2, { packetId: 77 }));
    assert.equal((await pub.next("pubrec")).packetId, 77);
    await pub.send({ type: "pubrel", packetId: 77 });
    assert.equal((await pub.next("pubcomp")).packetId, 77);
    const m = await sub.next("publish");
    assert.equal(text(m), "exactly");
    assert.equal(m.qos, 2);
    sub.close();
    pub.close();
  });
});

Deno.test("a QoS 2 resend before PUBREL gets another PUBREC and is not routed twice [MQTT-4.3.3-2]", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["q2/once", 0]]);
    const pub = await connected(b, "pub");
    const p = publish("q2/once", "once", 2, { packetId: 9 });
    await pub.send(p);
    await pub.next("pubrec");
    await pub.send({ ...p, dup: true });
    assert.equal((await pub.next("pubrec")).packetId, 9);
    await pub.send({ ...p, dup: false }); // even without DUP it is the same message
    assert.equal((await pub.next("pubrec")).packetId, 9);
    await pub.send({ type: "pubrel", packetId: 9 });
    await pub.next("pubcomp");
    await sub.next("publish");
    // Absence tested: no second copy.
    await assertNone(sub, "publish");
    sub.close();
    pub.close();
  });
});

Deno.test("after PUBCOMP the same packet id starts a new QoS 2 message [MQTT-4.3.3-2]", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["q2/reuse", 0]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "q2/reuse", "first", 2, { packetId: 5 });
    await publishAcked(pub, "q2/reuse", "second", 2, { packetId: 5 });
    assert.equal(text(await sub.next("publish")), "first");
    assert.equal(text(await sub.next("publish")), "second");
    sub.close();
    pub.close();
  });
});

Deno.test("a PUBREL for an unknown packet id still gets a PUBCOMP", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "stray");
    await c.send({ type: "pubrel", packetId: 1234 });
    assert.equal((await c.next("pubcomp")).packetId, 1234);
    assert.equal(c.closed, false);
    c.close();
  });
});

Deno.test("a repeated PUBREL gets a PUBCOMP each time", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "rel2");
    await c.send(publish("q2/rr", "x", 2, { packetId: 8 }));
    await c.next("pubrec");
    await c.send({ type: "pubrel", packetId: 8 });
    assert.equal((await c.next("pubcomp")).packetId, 8);
    await c.send({ type: "pubrel", packetId: 8 });
    assert.equal((await c.next("pubcomp")).packetId, 8);
    c.close();
  });
});

Deno.test("an outbound QoS 2 flow: the subscriber's PUBREC is answered with PUBREL, its PUBCOMP completes it [MQTT-4.3.3-1]", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["q2/out", 2]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "q2/out", "m1", 2, { packetId: 1 });
    await publishAcked(pub, "q2/out", "m2", 2, { packetId: 2 });
    const m1 = await sub.next("publish");
    assert.equal(m1.qos, 2);
    assert.equal(text(m1), "m1");
    await sub.send({ type: "pubrec", packetId: m1.packetId! });
    assert.equal((await sub.next("pubrel")).packetId, m1.packetId);
    // Absence tested: with one in-flight slot, m2 waits for the PUBCOMP, not just the PUBREC.
    await assertNone(sub, "publish");
    await sub.send({ type: "pubcomp", packetId: m1.packetId! });
    const m2 = await sub.next("publish");
    assert.equal(text(m2), "m2");
    sub.close();
    pub.close();
  }, { options: { maxInflight: 1 } });
});

Deno.test("a repeated PUBREC is answered with another PUBREL", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["q2/rec", 2]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "q2/rec", "x", 2);
    const m = await sub.next("publish");
    await sub.send({ type: "pubrec", packetId: m.packetId! });
    await sub.next("pubrel");
    await sub.send({ type: "pubrec", packetId: m.packetId! });
    assert.equal((await sub.next("pubrel")).packetId, m.packetId);
    await sub.send({ type: "pubcomp", packetId: m.packetId! });
    sub.close();
    pub.close();
  });
});

Deno.test("a QoS 2 message is downgraded to the subscription's QoS 1 and QoS 0 [MQTT-3.8.4-6]", async () => {
  await withBroker(async (b) => {
    const s1 = await connected(b, "s1");
    await subscribe(s1, [["q2/dg", 1]]);
    const s0 = await connected(b, "s0");
    await subscribe(s0, [["q2/dg", 0]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "q2/dg", "dg", 2);
    const m1 = await s1.next("publish");
    assert.equal(m1.qos, 1);
    assert.ok(m1.packetId! > 0);
    await s1.send({ type: "puback", packetId: m1.packetId! });
    const m0 = await s0.next("publish");
    assert.equal(m0.qos, 0);
    assert.equal(m0.packetId, undefined);
    for (const c of [s0, s1, pub]) c.close();
  });
});

Deno.test("an outbound QoS 2 PUBLISH not yet received is resent with DUP 1 on reconnect [MQTT-4.4.0-1]", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "re2", { clean: false });
    await subscribe(sub, [["q2/re", 2]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "q2/re", "again", 2);
    const first = await sub.next("publish");
    await drop(sub); // no PUBREC
    const back = await connected(b, "re2", { clean: false });
    const again = await back.next("publish");
    assert.equal(again.packetId, first.packetId);
    assert.equal(again.dup, true);
    assert.equal(again.qos, 2);
    assert.equal(text(again), "again");
    back.close();
    pub.close();
  });
});

Deno.test("after PUBREC, a reconnect resends the PUBREL, not the PUBLISH [MQTT-4.4.0-1]", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "rel-re", { clean: false });
    await subscribe(sub, [["q2/rel", 2]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "q2/rel", "x", 2);
    const m = await sub.next("publish");
    await sub.send({ type: "pubrec", packetId: m.packetId! });
    await sub.next("pubrel");
    await drop(sub); // no PUBCOMP
    const back = await connected(b, "rel-re", { clean: false });
    assert.equal((await back.next("pubrel")).packetId, m.packetId);
    await back.send({ type: "pubcomp", packetId: m.packetId! });
    // Absence tested: the message itself is not sent again.
    await assertNone(back, "publish");
    await drop(back);
    const third = await connected(b, "rel-re", { clean: false });
    await assertNone(third, "pubrel");
    third.close();
    pub.close();
  });
});

Deno.test("a persistent publisher's QoS 2 resend after reconnect, before PUBREL, is not routed twice", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["q2/pp", 0]]);
    const pub = await connected(b, "ppub", { clean: false });
    const p = publish("q2/pp", "exactly-once", 2, { packetId: 31 });
    await pub.send(p);
    await pub.next("pubrec");
    await drop(pub); // before PUBREL
    assert.equal(text(await sub.next("publish")), "exactly-once");
    const again = await connected(b, "ppub", { clean: false });
    await again.send({ ...p, dup: true });
    assert.equal((await again.next("pubrec")).packetId, 31);
    await again.send({ type: "pubrel", packetId: 31 });
    assert.equal((await again.next("pubcomp")).packetId, 31);
    // Absence tested: the resend was recognised as the same message.
    await assertNone(sub, "publish");
    sub.close();
    again.close();
  });
});
