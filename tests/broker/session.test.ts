/** Sessions: clean vs persistent, resume, offline queueing, takeover, expiry, durability. */
import assert from "node:assert/strict";
import {
  assertNone,
  connected,
  disconnect,
  drop,
  makeBroker,
  MemoryClient,
  publish,
  publishAcked,
  sqliteStore,
  subscribe,
  text,
  waitFor,
  withBroker,
  withTempDir,
} from "./harness.ts";

Deno.test("session present is 0 for a new persistent session and 1 when it is resumed [MQTT-3.2.2-2] [MQTT-3.2.2-3]", async () => {
  await withBroker(async (b) => {
    const c1 = new MemoryClient(b);
    assert.equal((await c1.connect("p", false)).sessionPresent, false);
    await drop(c1);
    const c2 = new MemoryClient(b);
    assert.equal((await c2.connect("p", false)).sessionPresent, true);
    await disconnect(c2);
    const c3 = new MemoryClient(b);
    assert.equal((await c3.connect("p", false)).sessionPresent, true, "also after DISCONNECT");
    c3.close();
  });
});

Deno.test("a clean session ends with its connection [MQTT-3.1.2-6]", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "cl");
    await subscribe(c, [["cl/t", 1]]);
    assert.equal(b.stats.sessions, 1);
    await drop(c);
    assert.equal(b.stats.sessions, 0);
    assert.equal(b.stats.subscriptions, 0);
    const again = new MemoryClient(b);
    assert.equal((await again.connect("cl", false)).sessionPresent, false);
    again.close();
  });
});

Deno.test("a persistent session keeps its subscriptions across reconnects [MQTT-3.1.2-4]", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "keep", { clean: false });
    await subscribe(c, [["keep/t", 1]]);
    await drop(c);
    const back = await connected(b, "keep", { clean: false });
    const pub = await connected(b, "pub");
    await publishAcked(pub, "keep/t", "still subscribed", 1);
    assert.equal(text(await back.next("publish")), "still subscribed");
    back.close();
    pub.close();
  });
});

Deno.test("a persistent session queues QoS 1 and 2 while offline, not QoS 0, and delivers in order on resume [MQTT-3.1.2-5]", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "q", { clean: false });
    await subscribe(c, [["q/t", 2]]);
    await drop(c);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "q/t", "one", 1, { packetId: 1 });
    await publishAcked(pub, "q/t", "zero", 0);
    await publishAcked(pub, "q/t", "two", 2, { packetId: 2 });
    await publishAcked(pub, "q/t", "three", 1, { packetId: 3 });
    const back = new MemoryClient(b);
    assert.equal((await back.connect("q", false)).sessionPresent, true);
    const got: [string, number, boolean][] = [];
    for (let i = 0; i < 3; i++) {
      const m = await back.next("publish");
      got.push([text(m), m.qos, m.dup]);
      if (m.qos === 1) await back.send({ type: "puback", packetId: m.packetId! });
      else {
        await back.send({ type: "pubrec", packetId: m.packetId! });
        await back.next("pubrel");
        await back.send({ type: "pubcomp", packetId: m.packetId! });
      }
    }
    assert.deepEqual(got, [["one", 1, false], ["two", 2, false], ["three", 1, false]]);
    await assertNone(back, "publish");
    back.close();
    pub.close();
  });
});

Deno.test("connecting with clean session 1 discards the persistent session and its queue [MQTT-3.1.2-6]", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "disc", { clean: false });
    await subscribe(c, [["disc/t", 1]]);
    await drop(c);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "disc/t", "queued", 1);
    const clean = new MemoryClient(b);
    assert.equal((await clean.connect("disc", true)).sessionPresent, false, "[MQTT-3.2.2-1]");
    // Absence tested: the queued message and the subscription are gone.
    await publishAcked(pub, "disc/t", "live", 1);
    await assertNone(clean, "publish");
    assert.equal(b.stats.subscriptions, 0);
    await drop(clean);
    const persistent = new MemoryClient(b);
    assert.equal((await persistent.connect("disc", false)).sessionPresent, false);
    persistent.close();
    pub.close();
  });
});

Deno.test("a new connection with the same client id takes over: the old one is closed [MQTT-3.1.4-2]", async () => {
  const reasons: string[] = [];
  await withBroker(async (b) => {
    const old = await connected(b, "dup", { clean: false });
    await subscribe(old, [["dup/t", 1]]);
    const fresh = new MemoryClient(b);
    const ack = await fresh.connect("dup", false);
    assert.equal(ack.reasonCode, 0);
    assert.equal(ack.sessionPresent, true, "the session moved to the new connection");
    await old.waitClosed();
    assert.equal(b.stats.connections, 1);
    assert.equal(b.stats.sessions, 1);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "dup/t", "to-new", 1);
    assert.equal(text(await fresh.next("publish")), "to-new");
    assert.equal(reasons.length, 1, "the old connection was reported disconnected");
    fresh.close();
    pub.close();
  }, {
    events: { clientDisconnected: (info, why) => info.clientId === "dup" && reasons.push(why) },
  });
});

Deno.test("a takeover with clean session 1 discards the old session", async () => {
  await withBroker(async (b) => {
    const old = await connected(b, "dupc", { clean: false });
    await subscribe(old, [["dupc/t", 1]]);
    const fresh = new MemoryClient(b);
    assert.equal((await fresh.connect("dupc", true)).sessionPresent, false);
    await old.waitClosed();
    assert.equal(b.stats.subscriptions, 0);
    fresh.close();
  });
});

Deno.test("in-flight deliveries of a taken-over session are resent to the new connection with DUP", async () => {
  await withBroker(async (b) => {
    const old = await connected(b, "tk", { clean: false });
    await subscribe(old, [["tk/t", 1]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "tk/t", "unacked", 1);
    const first = await old.next("publish");
    const fresh = await connected(b, "tk", { clean: false });
    const again = await fresh.next("publish");
    assert.equal(again.packetId, first.packetId);
    assert.equal(again.dup, true);
    await old.waitClosed();
    fresh.close();
    pub.close();
  });
});

Deno.test("a persistent session expires after the session expiry interval while offline", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "exp", { clean: false });
    await subscribe(c, [["exp/t", 1]]);
    await drop(c);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "exp/t", "queued", 1);
    assert.equal(b.stats.sessions, 2);
    // Waits for the expiry itself (the session count drops), not a fixed time.
    await waitFor(() => b.stats.sessions === 1, 5000, "session expiry");
    assert.equal(b.stats.subscriptions, 0);
    const back = new MemoryClient(b);
    assert.equal((await back.connect("exp", false)).sessionPresent, false);
    await assertNone(back, "publish");
    back.close();
    pub.close();
  }, { options: { sessionExpiryInterval: 1 } });
});

Deno.test("a connected persistent session does not expire", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "alive", { clean: false });
    await subscribe(c, [["alive/t", 0]]);
    // Absence tested: two expiry ticks pass while connected.
    await new Promise((r) => setTimeout(r, 2200));
    assert.equal(b.stats.sessions, 1);
    await drop(c);
    const back = new MemoryClient(b);
    assert.equal((await back.connect("alive", false)).sessionPresent, true);
    back.close();
  }, { options: { sessionExpiryInterval: 1 } });
});

Deno.test("queued messages beyond the in-flight window are sent as earlier ones are acknowledged", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "win", { clean: false });
    await subscribe(c, [["win/t", 1]]);
    await drop(c);
    const pub = await connected(b, "pub");
    for (let i = 1; i <= 5; i++) await publishAcked(pub, "win/t", String(i), 1, { packetId: i });
    const back = await connected(b, "win", { clean: false });
    const a = await back.next("publish");
    const b2 = await back.next("publish");
    assert.deepEqual([text(a), text(b2)], ["1", "2"]);
    await assertNone(back, "publish", 50);
    const got = [];
    await back.send({ type: "puback", packetId: a.packetId! });
    await back.send({ type: "puback", packetId: b2.packetId! });
    for (let i = 0; i < 3; i++) {
      const m = await back.next("publish");
      got.push(text(m));
      await back.send({ type: "puback", packetId: m.packetId! });
    }
    assert.deepEqual(got, ["3", "4", "5"]);
    back.close();
    pub.close();
  }, { options: { maxInflight: 2 } });
});

Deno.test("a persistent session with its subscriptions, queue and in-flight messages survives a restart (SqliteStore)", async () => {
  await withTempDir(async (dir) => {
    const b1 = makeBroker({ store: sqliteStore(dir), options: { durable: true } });
    await b1.start();
    const sub = await connected(b1, "dur", { clean: false });
    await subscribe(sub, [["dur/t", 2]]);
    const pub = await connected(b1, "pub");
    await publishAcked(pub, "dur/t", "in-flight", 1, { packetId: 1 });
    const inflight = await sub.next("publish");
    await drop(sub); // unacknowledged
    await publishAcked(pub, "dur/t", "queued-1", 2, { packetId: 2 });
    await publishAcked(pub, "dur/t", "queued-0", 0);
    pub.close();
    await b1.close();

    const b2 = makeBroker({ store: sqliteStore(dir), options: { durable: true } });
    await b2.start();
    try {
      const back = new MemoryClient(b2);
      assert.equal((await back.connect("dur", false)).sessionPresent, true);
      const again = await back.next("publish");
      assert.equal(text(again), "in-flight");
      assert.equal(again.dup, true);
      assert.equal(again.packetId, inflight.packetId);
      await back.send({ type: "puback", packetId: again.packetId! });
      const q = await back.next("publish");
      assert.equal(text(q), "queued-1");
      assert.equal(q.qos, 2);
      await back.send({ type: "pubrec", packetId: q.packetId! });
      await back.next("pubrel");
      await back.send({ type: "pubcomp", packetId: q.packetId! });
      // The subscription came back too.
      const pub2 = await connected(b2, "pub2");
      await pub2.send(publish("dur/t", "after restart"));
      assert.equal(text(await back.next("publish")), "after restart");
      back.close();
      pub2.close();
    } finally {
      await b2.close();
    }
  });
});

Deno.test("a clean session leaves nothing behind across a restart (SqliteStore)", async () => {
  await withTempDir(async (dir) => {
    const b1 = makeBroker({ store: sqliteStore(dir), options: { durable: true } });
    await b1.start();
    const c = await connected(b1, "tmp");
    await subscribe(c, [["tmp/t", 1]]);
    c.close();
    await b1.close();
    const b2 = makeBroker({ store: sqliteStore(dir), options: { durable: true } });
    await b2.start();
    try {
      const back = new MemoryClient(b2);
      assert.equal((await back.connect("tmp", false)).sessionPresent, false);
      back.close();
    } finally {
      await b2.close();
    }
  });
});
