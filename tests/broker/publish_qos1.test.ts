/** PUBLISH at QoS 1, both directions: PUBLISH / PUBACK. */
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

Deno.test("a QoS 1 PUBLISH is answered with a PUBACK carrying its packet id [MQTT-4.3.2-2]", async () => {
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await pub.send(publish("q1/a", "x", 1, { packetId: 4242 }));
    assert.equal((await pub.next("puback")).packetId, 4242);
    await pub.send(publish("q1/a", "y", 1, { packetId: 65535 }));
    assert.equal((await pub.next("puback")).packetId, 65535);
    pub.close();
  });
});

Deno.test("a QoS 1 message is delivered to a QoS 1 subscriber with a non-zero packet id and DUP 0", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["q1/t", 1]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "q1/t", "one", 1);
    const m = await sub.next("publish");
    assert.equal(m.qos, 1);
    assert.equal(text(m), "one");
    assert.ok(m.packetId! > 0, "[MQTT-2.3.1-1]");
    assert.equal(m.dup, false, "first delivery has DUP 0 [MQTT-3.3.1-3]");
    await sub.send({ type: "puback", packetId: m.packetId! });
    sub.close();
    pub.close();
  });
});

Deno.test("an incoming DUP 1 does not set DUP on the outgoing delivery [MQTT-3.3.1-3]", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["q1/dup", 1]]);
    const pub = await connected(b, "pub");
    await pub.send(publish("q1/dup", "again", 1, { dup: true, packetId: 3 }));
    assert.equal((await pub.next("puback")).packetId, 3);
    const m = await sub.next("publish");
    assert.equal(m.dup, false);
    sub.close();
    pub.close();
  });
});

Deno.test("a QoS 1 message to a QoS 0 subscription is delivered at QoS 0 [MQTT-3.8.4-6]", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["q1/down", 0]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "q1/down", "down", 1);
    const m = await sub.next("publish");
    assert.equal(m.qos, 0);
    assert.equal(m.packetId, undefined);
    sub.close();
    pub.close();
  });
});

Deno.test("a QoS 1 message to a QoS 2 subscription is delivered at QoS 1 (never upgraded)", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["q1/up", 2]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "q1/up", "up", 1);
    assert.equal((await sub.next("publish")).qos, 1);
    sub.close();
    pub.close();
  });
});

Deno.test("the subscriber's PUBACK completes a delivery and frees its in-flight slot", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["q1/win", 1]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "q1/win", "m1", 1, { packetId: 1 });
    await publishAcked(pub, "q1/win", "m2", 1, { packetId: 2 });
    const m1 = await sub.next("publish");
    assert.equal(text(m1), "m1");
    // Absence tested: with one in-flight slot, m2 waits for m1's PUBACK.
    await assertNone(sub, "publish");
    await sub.send({ type: "puback", packetId: m1.packetId! });
    const m2 = await sub.next("publish");
    assert.equal(text(m2), "m2");
    sub.close();
    pub.close();
  }, { options: { maxInflight: 1 } });
});

Deno.test("a PUBACK for an unknown packet id is ignored and the connection stays up", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "stray");
    await c.send({ type: "puback", packetId: 999 });
    await c.send({ type: "pingreq" });
    await c.next("pingresp");
    assert.equal(c.closed, false);
    c.close();
  });
});

Deno.test("an unacknowledged QoS 1 delivery is resent with DUP 1 and the same packet id on reconnect [MQTT-4.4.0-1]", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "resend1", { clean: false });
    await subscribe(sub, [["q1/re", 1]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "q1/re", "again", 1);
    const first = await sub.next("publish");
    assert.equal(first.dup, false);
    await drop(sub); // no PUBACK
    const back = await connected(b, "resend1", { clean: false });
    const again = await back.next("publish");
    assert.equal(text(again), "again");
    assert.equal(again.packetId, first.packetId);
    assert.equal(again.dup, true, "[MQTT-3.3.1-1]");
    assert.equal(again.qos, 1);
    await back.send({ type: "puback", packetId: again.packetId! });
    await drop(back);
    // Acknowledged now: a third connection gets nothing.
    const third = await connected(b, "resend1", { clean: false });
    await assertNone(third, "publish");
    third.close();
    pub.close();
  });
});

Deno.test("an acknowledged QoS 1 delivery is not resent on reconnect", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "acked1", { clean: false });
    await subscribe(sub, [["q1/ok", 1]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "q1/ok", "done", 1);
    const m = await sub.next("publish");
    await sub.send({ type: "puback", packetId: m.packetId! });
    // The PUBACK is processed before the next packet: a PINGRESP shows it was read.
    await sub.send({ type: "pingreq" });
    await sub.next("pingresp");
    await drop(sub);
    const back = await connected(b, "acked1", { clean: false });
    // Absence tested: nothing is resent.
    await assertNone(back, "publish");
    back.close();
    pub.close();
  });
});

Deno.test("a clean-session subscriber's unacknowledged QoS 1 delivery is not resent to its next connection", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "clean1");
    await subscribe(sub, [["q1/c", 1]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "q1/c", "gone", 1);
    await sub.next("publish");
    await drop(sub);
    const back = await connected(b, "clean1");
    await assertNone(back, "publish");
    back.close();
    pub.close();
  });
});

Deno.test("QoS 1 messages are delivered in the order published [MQTT-4.6.0-2]", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["q1/ord", 1]]);
    const pub = await connected(b, "pub");
    for (let i = 1; i <= 20; i++) await pub.send(publish("q1/ord", String(i), 1, { packetId: i }));
    const got: string[] = [];
    const ids = new Set<number>();
    for (let i = 1; i <= 20; i++) {
      const m = await sub.next("publish");
      got.push(text(m));
      ids.add(m.packetId!);
      await sub.send({ type: "puback", packetId: m.packetId! });
    }
    assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => String(i + 1)));
    assert.equal(ids.size, 20, "packet ids of in-flight deliveries are distinct");
    for (let i = 1; i <= 20; i++) assert.equal((await pub.next("puback")).packetId, i);
    sub.close();
    pub.close();
  }, { options: { maxInflight: 5 } });
});

Deno.test("a QoS 1 PUBLISH with a wildcard topic closes the connection and is not acknowledged [MQTT-3.3.2-2]", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["#", 1]]);
    const pub = await connected(b, "pub");
    await pub.send(publish("q1/+", "bad", 1));
    await pub.waitClosed();
    assert.deepEqual(pub.pending("puback"), []);
    await assertNone(sub, "publish", 50);
    sub.close();
  });
});
