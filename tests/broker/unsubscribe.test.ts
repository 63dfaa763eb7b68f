/** UNSUBSCRIBE / UNSUBACK. */
import assert from "node:assert/strict";
import {
  assertNone,
  connected,
  drop,
  publish,
  publishAcked,
  subscribe,
  text,
  unsubscribe,
  withBroker,
} from "./harness.ts";

Deno.test("UNSUBSCRIBE is answered with an UNSUBACK carrying its packet id [MQTT-3.10.4-4]", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "u");
    await subscribe(c, [["u/t", 0]]);
    await c.send({ type: "unsubscribe", packetId: 4711, topics: ["u/t"] });
    assert.equal((await c.next("unsuback")).packetId, 4711);
    assert.equal(b.stats.subscriptions, 0);
    c.close();
  });
});

Deno.test("messages stop after UNSUBSCRIBE [MQTT-3.10.4-2]", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "stop");
    await subscribe(c, [["stop/t", 1]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "stop/t", "before", 0);
    assert.equal(text(await c.next("publish")), "before");
    await unsubscribe(c, ["stop/t"]);
    await publishAcked(pub, "stop/t", "after", 1);
    // Absence tested: no delivery after the UNSUBACK.
    await assertNone(c, "publish");
    c.close();
    pub.close();
  });
});

Deno.test("an UNSUBSCRIBE of a filter never subscribed still gets an UNSUBACK [MQTT-3.10.4-5]", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "nothing");
    await unsubscribe(c, ["never/subscribed"], 9);
    assert.equal(c.closed, false);
    c.close();
  });
});

Deno.test("filters are compared character by character: unsubscribing 'a/+' leaves 'a/#' [MQTT-3.10.4-1]", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "exact");
    await subscribe(c, [["cmp/#", 1]]);
    await unsubscribe(c, ["cmp/+"]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "cmp/x", "still", 1);
    const m = await c.next("publish");
    assert.equal(m.qos, 1);
    assert.equal(b.stats.subscriptions, 1);
    c.close();
    pub.close();
  });
});

Deno.test("unsubscribing one of two overlapping filters keeps delivery through the other, at its QoS", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "ov");
    await subscribe(c, [["ovu/+", 0], ["ovu/#", 2]]);
    await unsubscribe(c, ["ovu/#"]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "ovu/x", "x", 2);
    const m = await c.next("publish");
    assert.equal(m.qos, 0, "only the QoS 0 subscription is left");
    c.close();
    pub.close();
  });
});

Deno.test("one UNSUBSCRIBE removes several filters", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "multi");
    await subscribe(c, [["m/a", 0], ["m/b", 0], ["m/c", 0]]);
    await unsubscribe(c, ["m/a", "m/c"]);
    assert.equal(b.stats.subscriptions, 1);
    const pub = await connected(b, "pub");
    for (const t of ["m/a", "m/b", "m/c"]) await pub.send(publish(t, t));
    assert.equal((await c.next("publish")).topic, "m/b");
    await assertNone(c, "publish");
    c.close();
    pub.close();
  });
});

Deno.test("a QoS 1 delivery in flight at UNSUBSCRIBE is still completed [MQTT-3.10.4-3]", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "inflight", { clean: false });
    await subscribe(c, [["if/t", 1]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "if/t", "pending", 1);
    const m = await c.next("publish");
    await unsubscribe(c, ["if/t"]);
    await drop(c); // without PUBACK
    const back = await connected(b, "inflight", { clean: false });
    const again = await back.next("publish");
    assert.equal(again.packetId, m.packetId);
    assert.equal(again.dup, true);
    await back.send({ type: "puback", packetId: again.packetId! });
    back.close();
    pub.close();
  });
});

Deno.test("an UNSUBSCRIBE of a persistent session holds across reconnects", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "pu", { clean: false });
    await subscribe(c, [["pu/a", 1], ["pu/b", 1]]);
    await unsubscribe(c, ["pu/a"]);
    await drop(c);
    const back = await connected(b, "pu", { clean: false });
    const pub = await connected(b, "pub");
    await publishAcked(pub, "pu/a", "a", 1);
    await publishAcked(pub, "pu/b", "b", 1);
    const m = await back.next("publish");
    assert.equal(m.topic, "pu/b");
    await back.send({ type: "puback", packetId: m.packetId! });
    await assertNone(back, "publish");
    back.close();
    pub.close();
  });
});

Deno.test("UNSUBSCRIBE fires the unsubscribed event only for filters that existed", async () => {
  const seen: string[] = [];
  await withBroker(async (b) => {
    const c = await connected(b, "uev");
    await subscribe(c, [["uev/a", 0]]);
    await unsubscribe(c, ["uev/a", "uev/never"]);
    assert.deepEqual(seen, ["uev/a"]);
    c.close();
  }, { events: { unsubscribed: (_info, filter) => seen.push(filter) } });
});
