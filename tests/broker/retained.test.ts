/** Retained messages: set, replace, delete, QoS on delivery, durability across a restart. */
import assert from "node:assert/strict";
import {
  assertNone,
  connected,
  disconnect,
  drop,
  makeBroker,
  publish,
  publishAcked,
  sqliteStore,
  subscribe,
  text,
  withBroker,
  withTempDir,
} from "./harness.ts";

Deno.test("a retained message is stored and sent to a later subscriber [MQTT-3.3.1-5]", async () => {
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await publishAcked(pub, "r/set", "kept", 1, { retain: true });
    assert.equal(b.stats.retained, 1);
    const c = await connected(b, "late");
    await subscribe(c, [["r/set", 1]]);
    const m = await c.next("publish");
    assert.equal(text(m), "kept");
    assert.equal(m.retain, true);
    c.close();
    pub.close();
  });
});

Deno.test("a live retained PUBLISH reaches existing subscribers with RETAIN 0 [MQTT-3.3.1-9]", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "early");
    await subscribe(c, [["r/live", 0]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "r/live", "now", 0, { retain: true });
    const m = await c.next("publish");
    assert.equal(m.retain, false);
    c.close();
    pub.close();
  });
});

Deno.test("a new retained message replaces the old one, also at QoS 0 [MQTT-3.3.1-7]", async () => {
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await publishAcked(pub, "r/rep", "old", 1, { retain: true });
    await publishAcked(pub, "r/rep", "new", 0, { retain: true });
    assert.equal(b.stats.retained, 1);
    const c = await connected(b, "late");
    await subscribe(c, [["r/rep", 2]]);
    const m = await c.next("publish");
    assert.equal(text(m), "new");
    assert.equal(m.qos, 0, "the QoS of the replacing message");
    await assertNone(c, "publish");
    c.close();
    pub.close();
  });
});

Deno.test("a PUBLISH with RETAIN 0 does not replace the retained message [MQTT-3.3.1-12]", async () => {
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await publishAcked(pub, "r/keep", "retained", 1, { retain: true });
    await publishAcked(pub, "r/keep", "transient", 1);
    const c = await connected(b, "late");
    await subscribe(c, [["r/keep", 1]]);
    assert.equal(text(await c.next("publish")), "retained");
    c.close();
    pub.close();
  });
});

Deno.test("an empty retained payload deletes the retained message and is still delivered live [MQTT-3.3.1-10] [MQTT-3.3.1-11]", async () => {
  await withBroker(async (b) => {
    const live = await connected(b, "live");
    await subscribe(live, [["r/del", 0]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "r/del", "x", 1, { retain: true });
    await live.next("publish");
    assert.equal(b.stats.retained, 1);
    await publishAcked(pub, "r/del", new Uint8Array(0), 1, { retain: true });
    const m = await live.next("publish");
    assert.equal(m.payload.byteLength, 0, "forwarded to current subscribers");
    assert.equal(b.stats.retained, 0);
    const late = await connected(b, "late");
    await subscribe(late, [["r/del", 0]]);
    // Absence tested: nothing retained any more, and the empty message was not stored.
    await assertNone(late, "publish");
    for (const c of [live, pub, late]) c.close();
  });
});

Deno.test("an empty retained payload on a topic without retained message stores nothing", async () => {
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await publishAcked(pub, "r/none", new Uint8Array(0), 0, { retain: true });
    assert.equal(b.stats.retained, 0);
    const late = await connected(b, "late");
    await subscribe(late, [["r/none", 0]]);
    await assertNone(late, "publish");
    pub.close();
    late.close();
  });
});

Deno.test("retained messages go to a downgraded subscriber at the subscription's QoS, never above the message's", async () => {
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await publishAcked(pub, "rd/q2", "two", 2, { retain: true });
    await publishAcked(pub, "rd/q1", "one", 1, { retain: true });
    await publishAcked(pub, "rd/q0", "zero", 0, { retain: true });
    const s0 = await connected(b, "s0");
    await subscribe(s0, [["rd/+", 0]]);
    const got0 = [await s0.next("publish"), await s0.next("publish"), await s0.next("publish")];
    assert.ok(got0.every((m) => m.qos === 0 && m.packetId === undefined && m.retain));
    const s1 = await connected(b, "s1");
    await subscribe(s1, [["rd/+", 1]]);
    const got1 = new Map<string, number>();
    for (let i = 0; i < 3; i++) {
      const m = await s1.next("publish");
      got1.set(text(m), m.qos);
      if (m.qos === 1) await s1.send({ type: "puback", packetId: m.packetId! });
    }
    assert.deepEqual(Object.fromEntries(got1), { two: 1, one: 1, zero: 0 });
    await assertNone(s0, "publish", 50);
    for (const c of [pub, s0, s1]) c.close();
  });
});

Deno.test("a wildcard subscription receives every matching retained message", async () => {
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    for (const t of ["w/a", "w/b/c", "other/x"]) {
      await publishAcked(pub, t, t, 0, { retain: true });
    }
    const c = await connected(b, "late");
    await subscribe(c, [["w/#", 0]]);
    const topics = [(await c.next("publish")).topic, (await c.next("publish")).topic].sort();
    assert.deepEqual(topics, ["w/a", "w/b/c"]);
    await assertNone(c, "publish");
    c.close();
    pub.close();
  });
});

Deno.test("retained messages outlive the publisher's session [MQTT-3.1.2-7]", async () => {
  await withBroker(async (b) => {
    const pub = await connected(b, "gone");
    await publishAcked(pub, "r/orphan", "stays", 1, { retain: true });
    await disconnect(pub);
    const c = await connected(b, "late");
    await subscribe(c, [["r/orphan", 0]]);
    assert.equal(text(await c.next("publish")), "stays");
    c.close();
  });
});

Deno.test("a retained message is queued for an offline persistent subscriber as a normal message", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "off", { clean: false });
    await subscribe(sub, [["r/off", 1]]);
    await drop(sub);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "r/off", "queued", 1, { retain: true });
    const back = await connected(b, "off", { clean: false });
    const m = await back.next("publish");
    assert.equal(text(m), "queued");
    assert.equal(m.retain, false, "sent because of an established subscription [MQTT-3.3.1-9]");
    back.close();
    pub.close();
  });
});

Deno.test("retained messages and their deletion survive a restart with SqliteStore", async () => {
  await withTempDir(async (dir) => {
    const b1 = makeBroker({ store: sqliteStore(dir), options: { durable: true } });
    await b1.start();
    const pub = await connected(b1, "pub");
    await publishAcked(pub, "dur/a", "A", 1, { retain: true });
    await publishAcked(pub, "dur/b", "B", 2, { retain: true });
    await publishAcked(pub, "dur/b", new Uint8Array(0), 1, { retain: true }); // deleted
    await publishAcked(pub, "dur/c", "C1", 0, { retain: true });
    await publishAcked(pub, "dur/c", "C2", 1, { retain: true }); // replaced
    pub.close();
    await b1.close();

    const b2 = makeBroker({ store: sqliteStore(dir), options: { durable: true } });
    await b2.start();
    try {
      const c = await connected(b2, "late");
      await subscribe(c, [["dur/#", 2]]);
      const got = new Map<string, [string, number]>();
      for (let i = 0; i < 2; i++) {
        const m = await c.next("publish");
        assert.equal(m.retain, true);
        got.set(m.topic, [text(m), m.qos]);
        if (m.qos === 1) await c.send({ type: "puback", packetId: m.packetId! });
      }
      assert.deepEqual(Object.fromEntries(got), { "dur/a": ["A", 1], "dur/c": ["C2", 1] });
      await assertNone(c, "publish");
      c.close();
    } finally {
      await b2.close();
    }
  });
});

Deno.test("a QoS 0 retained message sent with a non-retained copy keeps its payload intact", async () => {
  // The payload of a routed message may be a view into the read chunk: the retained copy must
  // not be overwritten by later input.
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await pub.send(publish("r/view", "first-payload", 0, { retain: true }));
    for (let i = 0; i < 20; i++) await pub.send(publish("r/other", `xxxxxxxxxxxxx-${i}`));
    await publishAcked(pub, "r/sync", "sync", 1);
    const c = await connected(b, "late");
    await subscribe(c, [["r/view", 0]]);
    assert.equal(text(await c.next("publish")), "first-payload");
    c.close();
    pub.close();
  });
});

// Metrics must not report an empty broker after a restart.
Deno.test({
  name: "after a restart stats count the restored retained messages, sessions and subscriptions",
  fn: async () => {
    await withTempDir(async (dir) => {
      const b1 = makeBroker({ store: sqliteStore(dir), options: { durable: true } });
      await b1.start();
      const pub = await connected(b1, "pub");
      await publishAcked(pub, "st/a", "A", 1, { retain: true });
      const sub = await connected(b1, "persist", { clean: false });
      await subscribe(sub, [["st/#", 1]]);
      await disconnect(sub);
      pub.close();
      await b1.close();
      const b2 = makeBroker({ store: sqliteStore(dir), options: { durable: true } });
      await b2.start();
      try {
        assert.equal(b2.stats.retained, 1);
        assert.equal(b2.stats.sessions, 1);
        assert.equal(b2.stats.subscriptions, 1);
      } finally {
        await b2.close();
      }
    });
  },
});
