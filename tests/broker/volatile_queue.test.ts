/**
 * QoS 1 deliveries queued behind a full in-flight window of an online persistent session are
 * held unwritten like those sent at once (volatile.ts): written only when left unacknowledged
 * past the grace period, when the session goes offline, or never when acknowledged in time.
 */
import assert from "node:assert/strict";
import type { OutboundEntry } from "../../src/broker/model.ts";
import { VOLATILE_GRACE_MS } from "../../src/broker/volatile.ts";
import type { Broker } from "../../src/broker/broker.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import {
  connected,
  drop,
  makeBroker,
  type MemoryClient,
  publish,
  sqliteStore,
  subscribe,
  text,
  waitFor,
  withBroker,
  withTempDir,
} from "./harness.ts";

/** A MemoryStore that records every outbound write and removal (seq and state). */
class RecordingStore extends MemoryStore {
  puts: { seq: number; state: string; payload: string }[] = [];
  removes: number[] = [];
  override putOutbound(clientId: string, entry: OutboundEntry): void {
    this.puts.push({ seq: entry.seq, state: entry.state, payload: text(entry.message) });
    super.putOutbound(clientId, entry);
  }
  override removeOutbound(clientId: string, seq: number): void {
    this.removes.push(seq);
    super.removeOutbound(clientId, seq);
  }
}

/** A persistent subscriber "sub" to `filter` at QoS 1 (SUBACK received), and a publisher "pub". */
async function subscriberAndPublisher(
  b: Broker,
  filter: string,
): Promise<{ sub: MemoryClient; pub: MemoryClient }> {
  const sub = await connected(b, "sub", { clean: false });
  await subscribe(sub, [[filter, 1]]);
  return { sub, pub: await connected(b, "pub") };
}

/** Sends QoS 1 PUBLISHes m0..m(n-1) with packet ids 1..n without waiting for their PUBACKs. */
async function publishMany(pub: MemoryClient, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await pub.send(publish("q/t", `m${i}`, 1, { packetId: i + 1 }));
}

/** Receives `n` PUBLISHes, acknowledging each as it arrives when `ack`; returns their payloads. */
async function receive(sub: MemoryClient, n: number, ack: boolean): Promise<string[]> {
  const got: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = await sub.next("publish");
    got.push(text(p));
    if (ack) await sub.send({ type: "puback", packetId: p.packetId! });
  }
  return got;
}

Deno.test("QoS 1 messages queued behind a full in-flight window and acknowledged in time are never written", async () => {
  const store = new RecordingStore();
  await withBroker(async (b) => {
    const { sub, pub } = await subscriberAndPublisher(b, "q/t");
    await publishMany(pub, 10);
    assert.deepEqual(await receive(sub, 10, true), Array.from({ length: 10 }, (_, i) => `m${i}`));
    for (let i = 0; i < 10; i++) await pub.next("puback");
    assert.deepEqual(store.puts, [], "no delivery reached the store");
    sub.close();
    pub.close();
  }, { store, options: { durable: true, maxInflight: 2 } });
});

Deno.test("a queued QoS 1 message left unacknowledged is written after the grace period, and its publisher's ack waits for it", async () => {
  const store = new RecordingStore();
  await withBroker(async (b) => {
    const { sub, pub } = await subscriberAndPublisher(b, "q/t");
    const sentAt = Date.now();
    await publishMany(pub, 2);
    // The first is in flight (unacknowledged), the second queued behind it (window of one).
    assert.deepEqual(await receive(sub, 1, false), ["m0"]);
    await pub.next("puback");
    await pub.next("puback");
    assert.ok(Date.now() - sentAt >= VOLATILE_GRACE_MS - 1, "the acks waited for the grace period");
    assert.deepEqual(
      store.puts.map((p) => [p.payload, p.state]).sort(),
      [["m0", "sent"], ["m1", "queued"]],
      "both were written before their publisher was acknowledged",
    );
    // Acknowledging m0 sends m1, now from the store's point of view an ordinary queued entry.
    const p0 = sub.pending("publish");
    assert.deepEqual(p0, []);
    await sub.send({ type: "puback", packetId: 1 });
    assert.deepEqual(await receive(sub, 1, true), ["m1"]);
    await waitFor(() => store.removes.length === 2, 3000, "both entries removed");
    sub.close();
    pub.close();
  }, { store, options: { durable: true, maxInflight: 1 } });
});

Deno.test("held queued deliveries dropped by the drop-oldest policy are never written", async () => {
  const store = new RecordingStore();
  await withBroker(async (b) => {
    const { sub, pub } = await subscriberAndPublisher(b, "q/t");
    // m0 in flight, m1 and m2 queued, then m3 and m4 push them out of a queue of two.
    await publishMany(pub, 5);
    assert.deepEqual(await receive(sub, 1, false), ["m0"]);
    for (let i = 0; i < 5; i++) await pub.next("puback");
    await waitFor(() => store.puts.length === 3, 3000, "the deliveries left to be written");
    assert.deepEqual(store.puts.map((p) => p.payload).sort(), ["m0", "m3", "m4"]);
    await sub.send({ type: "puback", packetId: 1 });
    assert.deepEqual(await receive(sub, 2, true), ["m3", "m4"]);
    sub.close();
    pub.close();
  }, {
    store,
    options: {
      durable: true,
      maxInflight: 1,
      maxQueuedMessages: 2,
      queueFullPolicy: "drop-oldest",
    },
  });
});

Deno.test("held queued deliveries are written when the subscriber goes offline and survive a restart", async () => {
  await withTempDir(async (dir) => {
    const options = { durable: true, maxInflight: 1 };
    const b1 = makeBroker({ store: sqliteStore(dir), options });
    await b1.start();
    const { sub, pub } = await subscriberAndPublisher(b1, "q/t");
    await publishMany(pub, 3);
    assert.deepEqual(await receive(sub, 1, false), ["m0"]);
    // Gone well within the grace period, and the broker stopped right after (before the grace
    // period would have written them): going offline is what writes what was held.
    const heldAt = Date.now();
    await drop(sub);
    pub.close();
    await b1.close();
    assert.ok(Date.now() - heldAt < VOLATILE_GRACE_MS, "stopped within the grace period");

    const b2 = makeBroker({ store: sqliteStore(dir), options });
    await b2.start();
    try {
      const back = await connected(b2, "sub", { clean: false });
      const first = await back.next("publish");
      assert.equal(text(first), "m0");
      assert.equal(first.dup, true, "the in-flight one is resent as a duplicate");
      await back.send({ type: "puback", packetId: first.packetId! });
      assert.deepEqual(await receive(back, 2, true), ["m1", "m2"]);
      back.close();
    } finally {
      await b2.close();
    }
  });
});

Deno.test("a held queued delivery an ACL reload no longer allows is never written", async () => {
  const store = new RecordingStore();
  let secretDenied = false;
  const authorizer = {
    canPublish: () => true,
    canSubscribe: (_c: unknown, filter: string) => !(secretDenied && filter.startsWith("q/secret")),
  };
  await withBroker(async (b) => {
    const { sub, pub } = await subscriberAndPublisher(b, "q/#");
    await pub.send(publish("q/open", "m0", 1, { packetId: 1 }));
    await pub.send(publish("q/secret/x", "m1", 1, { packetId: 2 }));
    await pub.send(publish("q/open", "m2", 1, { packetId: 3 }));
    assert.deepEqual(await receive(sub, 1, false), ["m0"]);
    secretDenied = true;
    b.reauthorizeAll();
    for (let i = 0; i < 3; i++) await pub.next("puback");
    await waitFor(() => store.puts.length === 2, 3000, "the deliveries left to be written");
    assert.deepEqual(store.puts.map((p) => p.payload).sort(), ["m0", "m2"]);
    await sub.send({ type: "puback", packetId: 1 });
    assert.deepEqual(await receive(sub, 1, true), ["m2"]);
    sub.close();
    pub.close();
  }, { store, authorizer, options: { durable: true, maxInflight: 1 } });
});
