/**
 * Acks that wait for another node (ack_waits.ts): the PUBLISHes of one outbox batch share one
 * reaction to its promise; each is still acknowledged in order once the batch is queued, and
 * none is acknowledged when it fails.
 */
import assert from "node:assert/strict";
import type { ClusterLink } from "../../src/broker/ports/cluster.ts";
import { connected, publish, waitFor, withBroker } from "./harness.ts";

/** A cluster link whose forwards wait for the current "batch" until it is cut, like outbox.ts. */
function batchingLink() {
  let batch = Promise.withResolvers<void>();
  const batches = [batch];
  const cluster: ClusterLink = {
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    routeAdded: () => {},
    routeRemoved: () => {},
    forward: (msg) => msg.qos > 0 ? batch.promise : undefined,
    acquireSession: () => Promise.resolve(),
    retainedChanged: () => {},
  };
  return {
    cluster,
    batches,
    /** Later forwards wait for a new batch. */
    cut() {
      batch = Promise.withResolvers<void>();
      batches.push(batch);
    },
  };
}

const acks = (c: { received: { type: string; packetId?: number }[] }) =>
  c.received.filter((p) => p.type === "puback" || p.type === "pubrec").map((p) =>
    `${p.type} ${p.packetId}`
  );

Deno.test("PUBLISHes queued in one batch for another node are acknowledged once it is queued, in order", async () => {
  const link = batchingLink();
  await withBroker(async (b) => {
    const c = await connected(b, "p");
    for (let pid = 1; pid <= 3; pid++) await c.send(publish("t", `m${pid}`, 1, { packetId: pid }));
    await c.send(publish("t", "m4", 2, { packetId: 4 }));
    await waitFor(() => b.stats.messagesIn === 4, 3000, "4 PUBLISHes handled");
    assert.deepEqual(acks(c), [], "nothing is acknowledged before the batch is queued");
    link.batches[0].resolve();
    await waitFor(() => acks(c).length === 4, 3000, "4 acks");
    assert.deepEqual(acks(c), ["puback 1", "puback 2", "puback 3", "pubrec 4"]);
    c.close();
  }, { cluster: link.cluster });
});

Deno.test("a failed batch leaves its PUBLISHes unacknowledged; other batches of other clients are not held by it", async () => {
  const link = batchingLink();
  await withBroker(async (b) => {
    const a = await connected(b, "a");
    const c = await connected(b, "c");
    await a.send(publish("t", "a1", 1, { packetId: 1 }));
    await a.send(publish("t", "a2", 1, { packetId: 2 }));
    link.cut();
    await c.send(publish("t", "c1", 1, { packetId: 1 }));
    link.cut();
    await a.send(publish("t", "a3", 1, { packetId: 3 }));
    await waitFor(() => b.stats.messagesIn === 4, 3000, "4 PUBLISHes handled");
    // The second batch first: only c's PUBLISH is acknowledged.
    link.batches[1].resolve();
    await waitFor(() => acks(c).length === 1, 3000, "c's ack");
    assert.deepEqual(acks(a), []);
    link.batches[0].reject(new Error("Redis went away"));
    link.batches[2].resolve();
    await waitFor(() => acks(a).length === 1, 3000, "a's ack for the third batch");
    assert.deepEqual(acks(a), ["puback 3"], "a1 and a2 stay unacknowledged (a resends them)");
    assert.deepEqual(acks(c), ["puback 1"]);
    a.close();
    c.close();
  }, { cluster: link.cluster });
});
