/** The core's limits: connections, packet size, queues, in-flight window, subscriptions, topics. */
import assert from "node:assert/strict";
import {
  assertNone,
  connected,
  drop,
  MemoryClient,
  publish,
  publishAcked,
  subscribe,
  text,
  waitFor,
  withBroker,
} from "./harness.ts";

Deno.test("beyond maxConnections a CONNECT is refused with CONNACK 0x03 and closed", async () => {
  await withBroker(async (b) => {
    const first = await connected(b, "first");
    const second = new MemoryClient(b);
    const ack = await second.connect("second");
    assert.equal(ack.reasonCode, 0x03);
    await second.waitClosed();
    assert.equal(first.closed, false);
    await drop(first);
    const third = await connected(b, "third"); // room again
    third.close();
  }, { options: { maxConnections: 1 } });
});

Deno.test("beyond maxConnectionsPerIp a CONNECT from that address is refused with 0x03; others are not", async () => {
  await withBroker(async (b) => {
    const a1 = await connected(b, "a1", { remoteAddress: "10.0.0.1:1000" });
    const a2 = new MemoryClient(b, 4, { remoteAddress: "10.0.0.1:1001" });
    assert.equal((await a2.connect("a2")).reasonCode, 0x03);
    await a2.waitClosed();
    const other = await connected(b, "b1", { remoteAddress: "10.0.0.2:1000" });
    a1.close();
    other.close();
  }, { options: { maxConnectionsPerIp: 1 } });
});

Deno.test("the per-address limit leaves loopback alone unless limitLoopback is set", async () => {
  // Behind a local proxy every client comes from 127.0.0.1: one address for all of them.
  await withBroker(async (b) => {
    const a1 = await connected(b, "l1", { remoteAddress: "127.0.0.1:1000" });
    const a2 = await connected(b, "l2", { remoteAddress: "127.0.0.1:1001" });
    const a3 = await connected(b, "l3", { remoteAddress: "[::1]:1002" });
    const a4 = await connected(b, "l4", { remoteAddress: "[::1]:1003" });
    for (const c of [a1, a2, a3, a4]) c.close();
  }, { options: { maxConnectionsPerIp: 1 } });
  await withBroker(async (b) => {
    const a1 = await connected(b, "l1", { remoteAddress: "127.0.0.1:1000" });
    const a2 = new MemoryClient(b, 4, { remoteAddress: "127.0.0.1:1001" });
    assert.equal((await a2.connect("l2")).reasonCode, 0x03);
    await a2.waitClosed();
    a1.close();
  }, { options: { maxConnectionsPerIp: 1, limitLoopback: true } });
});

Deno.test("a connection the admit hook refuses gets CONNACK 0x03", async () => {
  const asked: string[] = [];
  await withBroker(async (b) => {
    const c = new MemoryClient(b, 4, { remoteAddress: "192.0.2.9:4000" });
    assert.equal((await c.connect("banned")).reasonCode, 0x03);
    await c.waitClosed();
    const ok = await connected(b, "fine", { remoteAddress: "192.0.2.10:4000" });
    ok.close();
  }, {
    admit: (addr) => (asked.push(addr), addr.startsWith("192.0.2.9:") ? "banned" : null),
  });
  assert.deepEqual(asked, ["192.0.2.9:4000", "192.0.2.10:4000"]);
});

Deno.test("a packet larger than maxPacketSize closes the connection and is not routed", async () => {
  await withBroker(async (b) => {
    const watcher = await connected(b, "watcher");
    await subscribe(watcher, [["big/#", 0]]);
    const c = await connected(b, "big");
    // 1 type byte + 2 length bytes + 2 + 5 topic + payload: exactly 200 bytes passes.
    await c.send(publish("big/t", new Uint8Array(200 - 10)));
    assert.equal((await watcher.next("publish")).payload.byteLength, 190);
    await c.send(publish("big/t", new Uint8Array(201 - 10)));
    await c.waitClosed();
    await assertNone(watcher, "publish");
    watcher.close();
  }, { options: { maxPacketSize: 200 } });
});

async function queueFull(policy: "drop-new" | "drop-oldest"): Promise<string[]> {
  const got: string[] = [];
  await withBroker(async (b) => {
    const sub = await connected(b, "slow", { clean: false });
    await subscribe(sub, [["qf", 1]]);
    await drop(sub);
    const pub = await connected(b, "pub");
    for (let i = 1; i <= 5; i++) await publishAcked(pub, "qf", String(i), 1, { packetId: i });
    assert.equal(b.stats.dropped, 3);
    const back = await connected(b, "slow", { clean: false });
    for (let i = 0; i < 2; i++) {
      const m = await back.next("publish");
      got.push(text(m));
      await back.send({ type: "puback", packetId: m.packetId! });
    }
    await assertNone(back, "publish");
    back.close();
    pub.close();
  }, { options: { maxQueuedMessages: 2, queueFullPolicy: policy } });
  return got;
}

Deno.test("a full queue with policy drop-new keeps the oldest messages", async () => {
  assert.deepEqual(await queueFull("drop-new"), ["1", "2"]);
});

Deno.test("a full queue with policy drop-oldest keeps the newest messages", async () => {
  assert.deepEqual(await queueFull("drop-oldest"), ["4", "5"]);
});

Deno.test("maxQueuedBytes bounds an offline queue by payload bytes", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "bytes", { clean: false });
    await subscribe(sub, [["qb", 1]]);
    await drop(sub);
    const pub = await connected(b, "pub");
    for (let i = 1; i <= 4; i++) {
      await publishAcked(pub, "qb", String(i).repeat(10), 1, { packetId: i });
    }
    const back = await connected(b, "bytes", { clean: false });
    const got = [];
    for (let i = 0; i < 2; i++) {
      const m = await back.next("publish");
      got.push(text(m)[0]);
      await back.send({ type: "puback", packetId: m.packetId! });
    }
    assert.deepEqual(got, ["1", "2"]);
    await assertNone(back, "publish");
    back.close();
    pub.close();
  }, { options: { maxQueuedBytes: 25 } });
});

Deno.test("at most maxInflight QoS 1 deliveries are unacknowledged at a time; the rest follow acks in order", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "win");
    await subscribe(sub, [["mi", 1]]);
    const pub = await connected(b, "pub");
    for (let i = 1; i <= 5; i++) await publishAcked(pub, "mi", String(i), 1, { packetId: i });
    const first = [await sub.next("publish"), await sub.next("publish")];
    assert.deepEqual(first.map(text), ["1", "2"]);
    // Absence tested: the window is full.
    await assertNone(sub, "publish");
    await sub.send({ type: "puback", packetId: first[0].packetId! });
    const third = await sub.next("publish");
    assert.equal(text(third), "3");
    await assertNone(sub, "publish", 50);
    sub.close();
    pub.close();
  }, { options: { maxInflight: 2 } });
});

Deno.test("QoS 0 is not held back by a full in-flight window", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "mix");
    await subscribe(sub, [["mx", 1]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "mx", "q1", 1);
    await sub.next("publish");
    await pub.send(publish("mx", "q0"));
    const m = await sub.next("publish");
    assert.equal(text(m), "q0");
    assert.equal(m.qos, 0);
    sub.close();
    pub.close();
  }, { options: { maxInflight: 1 } });
});

Deno.test("beyond maxSubscriptionsPerClient a new filter gets SUBACK 0x80; replacing one still works", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "subs");
    assert.deepEqual(await subscribe(c, [["l/a", 0], ["l/b", 0], ["l/c", 0]], 1), [0, 0, 0x80]);
    assert.deepEqual(await subscribe(c, [["l/a", 1]], 2), [1], "replacing is not a new one");
    assert.equal(b.stats.subscriptions, 2);
    c.close();
  }, { options: { maxSubscriptionsPerClient: 2 } });
});

Deno.test("a topic filter over maxTopicLevels gets SUBACK 0x80", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "deep");
    assert.deepEqual(await subscribe(c, [["a/b/c", 0], ["a/b/c/d", 0]]), [0, 0x80]);
    c.close();
  }, { options: { maxTopicLevels: 3 } });
});

Deno.test("a PUBLISH topic over maxTopicLevels closes the connection", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "deep");
    await c.send(publish("a/b/c", "ok"));
    await c.send(publish("a/b/c/d", "too deep"));
    await c.waitClosed();
  }, { options: { maxTopicLevels: 3 } });
});

Deno.test("a PUBLISH topic over maxTopicLength closes the connection", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "long");
    await c.send(publish("x".repeat(11), "too long"));
    await c.waitClosed();
  }, { options: { maxTopicLength: 10 } });
});

Deno.test("refused connections are counted out again: the limit frees up", async () => {
  await withBroker(async (b) => {
    const first = await connected(b, "first");
    for (let i = 0; i < 3; i++) {
      const r = new MemoryClient(b);
      assert.equal((await r.connect(`r${i}`)).reasonCode, 3);
      await r.waitClosed();
    }
    await waitFor(() => b.stats.connections === 1);
    await drop(first);
    const again = await connected(b, "again");
    again.close();
  }, { options: { maxConnections: 1 } });
});
