/** PUBLISH at QoS 0, both directions: fire and forget. */
import assert from "node:assert/strict";
import {
  assertNone,
  connected,
  drop,
  publish,
  subscribe,
  text,
  waitFor,
  withBroker,
} from "./harness.ts";

Deno.test("a QoS 0 PUBLISH is delivered to a subscriber and not acknowledged", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["q0/t", 0]]);
    const pub = await connected(b, "pub");
    await pub.send(publish("q0/t", "hello"));
    const m = await sub.next("publish");
    assert.equal(m.topic, "q0/t");
    assert.equal(text(m), "hello");
    assert.equal(m.qos, 0);
    assert.equal(m.packetId, undefined);
    assert.equal(m.dup, false, "[MQTT-3.3.1-2]");
    assert.equal(m.retain, false, "[MQTT-3.3.1-9]");
    // Absence tested: QoS 0 has no acknowledgement of any kind.
    await assertNone(pub, "puback");
    assert.deepEqual(pub.received, []);
    sub.close();
    pub.close();
  });
});

Deno.test("a QoS 0 message to a QoS 2 subscription is delivered at QoS 0 [MQTT-3.8.4-6]", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["q0/up", 2]]);
    await sub.send(publish("q0/up", "low"));
    const m = await sub.next("publish");
    assert.equal(m.qos, 0);
    assert.equal(m.packetId, undefined);
    sub.close();
  });
});

Deno.test("a message goes to every matching subscriber, each once", async () => {
  await withBroker(async (b) => {
    const subs = [];
    for (const [id, filter] of [["s1", "fan/+"], ["s2", "fan/#"], ["s3", "#"], ["s4", "fan/x"]]) {
      const s = await connected(b, id);
      await subscribe(s, [[filter, 0]]);
      subs.push(s);
    }
    const other = await connected(b, "other");
    await subscribe(other, [["nofan/#", 0]]);
    const pub = await connected(b, "pub");
    await pub.send(publish("fan/x", "all"));
    for (const s of subs) assert.equal(text(await s.next("publish")), "all");
    // Absence tested: no second copy, nothing for the non-matching subscriber.
    await assertNone(other, "publish", 50);
    for (const s of subs) assert.deepEqual(s.pending("publish"), []);
    for (const s of [...subs, other, pub]) s.close();
  });
});

Deno.test("a publisher subscribed to its own topic receives its own message (no no-local in 3.1.1)", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "self");
    await subscribe(c, [["self/t", 0]]);
    await c.send(publish("self/t", "echo"));
    assert.equal(text(await c.next("publish")), "echo");
    c.close();
  });
});

Deno.test("QoS 0 messages from one publisher arrive in the order sent", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["ord/#", 0]]);
    const pub = await connected(b, "pub");
    for (let i = 0; i < 50; i++) await pub.send(publish(`ord/${i % 3}`, String(i)));
    const got: string[] = [];
    for (let i = 0; i < 50; i++) got.push(text(await sub.next("publish")));
    assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => String(i)));
    sub.close();
    pub.close();
  });
});

Deno.test("a large QoS 0 payload is delivered intact", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["big", 0]]);
    const payload = new Uint8Array(300_000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    await sub.send(publish("big", payload));
    const m = await sub.next("publish");
    assert.deepEqual(m.payload, payload);
    sub.close();
  });
});

Deno.test("an empty QoS 0 payload is delivered", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["empty", 0]]);
    await sub.send(publish("empty", new Uint8Array(0)));
    const m = await sub.next("publish");
    assert.equal(m.payload.byteLength, 0);
    sub.close();
  });
});

Deno.test("QoS 0 is not queued for an offline persistent session", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "offline0", { clean: false });
    await subscribe(sub, [["off/q0", 1]]);
    await drop(sub);
    const pub = await connected(b, "pub");
    await pub.send(publish("off/q0", "lost"));
    await waitFor(() => b.stats.messagesIn === 1);
    const back = await connected(b, "offline0", { clean: false });
    // Absence tested: nothing was queued while offline.
    await assertNone(back, "publish");
    // The subscription is still there: a live message arrives.
    await pub.send(publish("off/q0", "live"));
    assert.equal(text(await back.next("publish")), "live");
    back.close();
    pub.close();
  });
});

Deno.test("stats count messages in and out", async () => {
  await withBroker(async (b) => {
    const s1 = await connected(b, "s1");
    const s2 = await connected(b, "s2");
    await subscribe(s1, [["st", 0]]);
    await subscribe(s2, [["st", 0]]);
    const pub = await connected(b, "pub");
    await pub.send(publish("st", "x"));
    await s1.next("publish");
    await s2.next("publish");
    assert.equal(b.stats.messagesIn, 1);
    assert.equal(b.stats.messagesOut, 2);
    for (const c of [s1, s2, pub]) c.close();
  });
});
