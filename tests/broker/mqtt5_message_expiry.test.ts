/**
 * MQTT 5.0 Message Expiry in the core: the interval counts down while a message waits (queued
 * for an offline session, in flight across a reconnect, retained), the remaining interval is
 * what a subscriber is sent, and an expired message is never delivered.
 *
 * Waiting is simulated by moving Date.now forward (the broker reads no other clock), so no test
 * sleeps for seconds.
 */
import assert from "node:assert/strict";
import { MemoryStore } from "../../src/store/memory.ts";
import {
  assertNone,
  connected,
  drop,
  publishAcked,
  sqliteStore,
  subscribe,
  text,
  withBroker,
  withClock,
  withTempDir,
} from "./harness.ts";
import { connected5 } from "./mqtt5_harness.ts";
import { waitFor } from "../helpers/wait.ts";

const persistent = { sessionExpiryInterval: 600 };

Deno.test("a message delivered at once carries its Message Expiry Interval as received [MQTT-3.3.2-6]", async () => {
  await withBroker(async (b) => {
    const { c: sub } = await connected5(b, "sub");
    await subscribe(sub, [["t", 1]]);
    const { c: pub } = await connected5(b, "pub");
    await publishAcked(pub, "t", "now", 1, { properties: { messageExpiryInterval: 30 } });
    assert.equal((await sub.next("publish")).properties?.messageExpiryInterval, 30);
    sub.close();
    pub.close();
  });
});

Deno.test("a queued message is sent with the interval minus the time it waited [MQTT-3.3.2-6]", async () => {
  await withClock(async (advance) => {
    await withBroker(async (b) => {
      const { c: sub } = await connected5(b, "sub", persistent);
      await subscribe(sub, [["t", 2]]);
      await drop(sub);
      const { c: pub } = await connected5(b, "pub");
      const props = { messageExpiryInterval: 10, contentType: "c", userProperties: [["a", "b"]] };
      await publishAcked(pub, "t", "q1", 1, { properties: props as never });
      await publishAcked(pub, "t", "q2", 2, { properties: props as never });
      advance(4_200);
      const { c: back } = await connected5(b, "sub", persistent, { clean: false });
      for (const want of ["q1", "q2"]) {
        const m = await back.next("publish");
        assert.equal(text(m), want);
        // 10 s minus 4.2 s waited, rounded up.
        assert.deepEqual(m.properties, { ...props, messageExpiryInterval: 6 });
      }
      back.close();
      pub.close();
    });
  });
});

Deno.test("a queued message whose expiry passed is not delivered and leaves the store [MQTT-3.3.2-5]", async () => {
  const store = new MemoryStore();
  await withClock(async (advance) => {
    await withBroker(async (b) => {
      const { c: sub } = await connected5(b, "sub", persistent);
      await subscribe(sub, [["t", 1]]);
      await drop(sub);
      const { c: pub } = await connected5(b, "pub");
      await publishAcked(pub, "t", "short", 1, { properties: { messageExpiryInterval: 3 } });
      await publishAcked(pub, "t", "long", 1, { properties: { messageExpiryInterval: 60 } });
      await publishAcked(pub, "t", "forever", 1);
      assert.equal((await store.loadSession("sub"))!.outbound.length, 3);
      advance(3_000);
      const { c: back } = await connected5(b, "sub", persistent, { clean: false });
      const got: string[] = [];
      for (let i = 0; i < 2; i++) {
        const m = await back.next("publish");
        got.push(text(m));
        await back.send({ type: "puback", packetId: m.packetId! });
      }
      assert.deepEqual(got, ["long", "forever"]);
      await assertNone(back, "publish");
      await waitFor(async () => (await store.loadSession("sub"))!.outbound.length === 0, {
        what: "the queue to be empty in the store",
      });
      assert.equal(b.stats.expired, 1);
      back.close();
      pub.close();
    }, { store });
  });
});

Deno.test("a 3.1.1 subscriber does not get a queued message that expired either [MQTT-3.3.2-5]", async () => {
  await withClock(async (advance) => {
    await withBroker(async (b) => {
      const old = await connected(b, "old", { clean: false });
      await subscribe(old, [["t", 1]]);
      await drop(old);
      const { c: pub } = await connected5(b, "pub");
      await publishAcked(pub, "t", "gone", 1, { properties: { messageExpiryInterval: 1 } });
      await publishAcked(pub, "t", "stays", 1);
      advance(1_500);
      const back = await connected(b, "old", { clean: false });
      const m = await back.next("publish");
      assert.equal(text(m), "stays");
      assert.equal(m.properties, undefined);
      back.close();
      pub.close();
    });
  });
});

Deno.test("in-flight messages are resent after reconnect with the remaining interval, an expired one too: its delivery had started [MQTT-3.3.2-6] [MQTT-4.4.0-1]", async () => {
  await withClock(async (advance) => {
    await withBroker(async (b) => {
      const { c: sub } = await connected5(b, "sub", persistent);
      await subscribe(sub, [["t", 1]]);
      const { c: pub } = await connected5(b, "pub");
      await publishAcked(pub, "t", "long", 1, { properties: { messageExpiryInterval: 100 } });
      await publishAcked(pub, "t", "short", 1, { properties: { messageExpiryInterval: 2 } });
      // Received, never acknowledged.
      assert.equal(text(await sub.next("publish")), "long");
      const shortId = (await sub.next("publish")).packetId;
      await drop(sub);
      advance(30_500);
      // In-flight window of 2 (the client's Receive Maximum): both stay in flight, so the
      // message queued behind them waits for an acknowledgement.
      await publishAcked(pub, "t", "queued", 1);
      const { c: back } = await connected5(b, "sub", { ...persistent, receiveMaximum: 2 }, {
        clean: false,
      });
      const again = await back.next("publish");
      assert.equal(text(again), "long");
      assert.equal(again.dup, true);
      assert.equal(again.properties?.messageExpiryInterval, 70);
      const expired = await back.next("publish");
      assert.equal(text(expired), "short", "resent, not dropped: it was already sent once");
      assert.equal(expired.packetId, shortId, "with its original packet id");
      assert.equal(expired.dup, true);
      assert.equal(expired.properties?.messageExpiryInterval, 1, "never 0: the smallest left");
      await assertNone(back, "publish");
      await back.send({ type: "puback", packetId: shortId! });
      const next = await back.next("publish");
      assert.equal(text(next), "queued");
      assert.equal(next.dup, false);
      back.close();
      pub.close();
    }, { options: { maxInflight: 2 } });
  });
});

Deno.test("a QoS 2 PUBLISH already sent is not expired: resent on reconnect and completed [MQTT-4.3.3-7] [MQTT-4.4.0-1]", async () => {
  await withClock(async (advance) => {
    await withBroker(async (b) => {
      const { c: sub } = await connected5(b, "sub", persistent);
      await subscribe(sub, [["t", 2]]);
      const { c: pub } = await connected5(b, "pub");
      await publishAcked(pub, "t", "once", 2, { properties: { messageExpiryInterval: 2 } });
      const first = await sub.next("publish");
      await drop(sub);
      advance(10_000);
      const { c: back } = await connected5(b, "sub", persistent, { clean: false });
      const again = await back.next("publish");
      assert.equal(text(again), "once");
      assert.equal(again.packetId, first.packetId, "the same packet id: the client may hold it");
      assert.equal(again.dup, true);
      await back.send({ type: "pubrec", packetId: first.packetId! });
      assert.equal((await back.next("pubrel")).packetId, first.packetId);
      await back.send({ type: "pubcomp", packetId: first.packetId! });
      await waitFor(() => b.sessions.get("sub")?.inflight.size === 0, {
        what: "the flow to complete",
      });
      back.close();
      pub.close();
    });
  });
});

Deno.test("a retained message is sent with its remaining interval, and once expired is neither sent nor kept [MQTT-3.3.2-5] [MQTT-3.3.2-6]", async () => {
  const store = new MemoryStore();
  await withClock(async (advance) => {
    await withBroker(async (b) => {
      const { c: pub } = await connected5(b, "pub");
      const props = { messageExpiryInterval: 5, correlationData: new Uint8Array([1, 2]) };
      await publishAcked(pub, "r/a", "soon gone", 1, { retain: true, properties: props });
      await publishAcked(pub, "r/b", "kept", 1, { retain: true });
      advance(2_100);
      const { c: s1 } = await connected5(b, "s1");
      await subscribe(s1, [["r/a", 1]]);
      const m = await s1.next("publish");
      assert.equal(text(m), "soon gone");
      assert.deepEqual(m.properties, { ...props, messageExpiryInterval: 3 });
      advance(3_000);
      const { c: s2 } = await connected5(b, "s2");
      await subscribe(s2, [["r/#", 1]]);
      const only = await s2.next("publish");
      assert.equal(text(only), "kept");
      await assertNone(s2, "publish");
      // The once-a-second sweep removes it from the index and the store.
      await waitFor(() => b.retained.get("r/a") === null, {
        what: "the expired retained message to go",
      });
      const stored = (await store.loadRetained()).map((r) => r.topic);
      assert.deepEqual(stored, ["r/b"]);
      assert.equal(b.stats.retained, 1);
      s1.close();
      s2.close();
      pub.close();
    }, { store });
  });
});

Deno.test("a topic alias delivery of a message that waited carries the remaining interval too [MQTT-3.3.2-6]", async () => {
  await withClock(async (advance) => {
    await withBroker(async (b) => {
      const aliases = { ...persistent, topicAliasMaximum: 5 };
      const { c: sub } = await connected5(b, "sub", aliases);
      await subscribe(sub, [["t", 1]]);
      await drop(sub);
      const { c: pub } = await connected5(b, "pub");
      await publishAcked(pub, "t", "x", 1, { properties: { messageExpiryInterval: 50 } });
      advance(10_000);
      const { c: back } = await connected5(b, "sub", aliases, { clean: false });
      const m = await back.next("publish");
      assert.equal(m.properties?.topicAlias, 1);
      assert.equal(m.properties?.messageExpiryInterval, 40);
      back.close();
      pub.close();
    });
  });
});

Deno.test("a will's expiry counts from its publication and is forwarded [MQTT-3.3.2-6]", async () => {
  await withBroker(async (b) => {
    const { c: sub } = await connected5(b, "sub");
    await subscribe(sub, [["w", 0]]);
    const { c: dying } = await connected5(b, "dying", undefined, {
      will: {
        topic: "w",
        payload: new Uint8Array([1]),
        qos: 0,
        retain: false,
        properties: { messageExpiryInterval: 15 },
      },
    });
    await drop(dying);
    assert.equal((await sub.next("publish")).properties?.messageExpiryInterval, 15);
    sub.close();
  });
});

Deno.test("after a restart with SQLite: a queued message past its expiry is gone; a long-lived one arrives with every property and less time left [MQTT-3.3.2-5] [MQTT-3.3.2-6]", async () => {
  await withTempDir(async (dir) => {
    await withClock(async (advance) => {
      const props = {
        payloadFormatIndicator: 1,
        messageExpiryInterval: 3600,
        contentType: "text/plain",
        responseTopic: "answers/1",
        correlationData: new Uint8Array([7, 0, 7]),
        userProperties: [["a", "1"], ["a", "1"], ["b", "2"]] as [string, string][],
      };
      await withBroker(async (b) => {
        const { c: sub } = await connected5(b, "durable", persistent);
        await subscribe(sub, [["t", 1]]);
        await drop(sub);
        const { c: pub } = await connected5(b, "pub");
        await publishAcked(pub, "t", "3 s", 1, { properties: { messageExpiryInterval: 3 } });
        await publishAcked(pub, "t", "1 h", 1, { properties: props });
        await publishAcked(pub, "r", "retained 3 s", 1, {
          retain: true,
          properties: { messageExpiryInterval: 3 },
        });
        await publishAcked(pub, "r2", "retained 1 h", 1, { retain: true, properties: props });
        pub.close();
      }, { store: sqliteStore(dir) });
      // Stopped for longer than the short expiry.
      advance(5_000);
      await withBroker(async (b) => {
        assert.equal(b.retained.get("r"), null, "expired while the broker was down");
        const { c: back } = await connected5(b, "durable", persistent, { clean: false });
        const m = await back.next("publish");
        assert.equal(text(m), "1 h");
        assert.deepEqual(m.properties, { ...props, messageExpiryInterval: 3595 });
        await back.send({ type: "puback", packetId: m.packetId! });
        await assertNone(back, "publish");
        const { c: s } = await connected5(b, "s");
        await subscribe(s, [["r", 1], ["r2", 1]]);
        const r = await s.next("publish");
        assert.equal(text(r), "retained 1 h");
        assert.deepEqual(r.properties, { ...props, messageExpiryInterval: 3595 });
        await assertNone(s, "publish");
        back.close();
        s.close();
      }, { store: sqliteStore(dir) });
      // The expired retained message left the file too.
      const store = sqliteStore(dir);
      await store.open();
      assert.deepEqual((await store.loadRetained()).map((m) => m.topic), ["r2"]);
      await store.close();
    });
  });
});
