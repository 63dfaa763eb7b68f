/**
 * Issue 16, findings 8 and 10 in-process: retained messages owed to a new subscription are fed
 * as the client takes them, never shed or squeezed through the session's queue limit; and a
 * retained index that has been filled and cleared holds nothing.
 */
import assert from "node:assert/strict";
import type { PublishPacket } from "../../src/codec/packets.ts";
import { connected, publish, subscribe, waitFor, withBroker } from "./harness.ts";

Deno.test("3,000 retained QoS 1 messages all reach a subscriber with a queue of 100 and a window of 8", async () => {
  await withBroker(async (b) => {
    const pub = await connected(b, "setter");
    for (let i = 0; i < 3000; i++) {
      await pub.send(publish(`ret/${i}`, `v${i}`, 1, { retain: true, packetId: (i % 60000) + 1 }));
    }
    await waitFor(() => b.retained.size === 3000, 5000, "3000 retained messages");
    const sub = await connected(b, "reader", { clean: false });
    await subscribe(sub, [["ret/#", 1]]);
    const got = new Set<string>();
    // The reader acknowledges as it goes, as a client reading at full speed does.
    await waitFor(
      () => {
        for (let p = sub.received.shift(); p; p = sub.received.shift()) {
          if (p.type !== "publish") continue;
          const m = p as PublishPacket;
          got.add(m.topic);
          void sub.send({ type: "puback", packetId: m.packetId! });
        }
        return got.size === 3000;
      },
      10_000,
      "3000 retained deliveries",
    );
    const s = b.sessions.get("reader")!;
    console.log(
      `retained QoS 1: ${got.size} of 3000 delivered, ${b.stats.dropped} dropped, ` +
        `queue ${s.queueLength}, feed ${s.retainedFeed === null ? "finished" : "pending"}`,
    );
    assert.equal(b.stats.dropped, 0);
    assert.equal(s.retainedFeed, null, "the feed is let go once it has sent everything");
    pub.close();
    sub.close();
  }, { options: { maxQueuedMessages: 100, maxInflight: 8 } });
});

Deno.test("a retained index filled with 20,000 topics and cleared again holds no nodes", async () => {
  await withBroker(async (b) => {
    const pub = await connected(b, "churner");
    const rounds: string[] = [];
    for (let round = 1; round <= 3; round++) {
      for (let i = 0; i < 20_000; i++) {
        void pub.send(publish(`churn/${i % 100}/${round}/${i}`, "x", 0, { retain: true }));
      }
      await waitFor(() => b.retained.size === 20_000, 10_000, "20000 retained messages");
      const full = b.retained.nodeCount;
      for (let i = 0; i < 20_000; i++) {
        void pub.send(publish(`churn/${i % 100}/${round}/${i}`, "", 0, { retain: true }));
      }
      await waitFor(() => b.retained.size === 0, 10_000, "every retained message cleared");
      rounds.push(`round ${round}: ${full} nodes set, ${b.retained.nodeCount} after clear`);
      assert.equal(b.retained.nodeCount, 0);
    }
    console.log(`retained index: ${rounds.join("; ")}`);
    pub.close();
  });
});
