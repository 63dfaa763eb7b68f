/**
 * A node whose lease lapsed (its process was paused) and that was taken over meanwhile: when it
 * goes on, it delivers nothing more from its stream and acknowledges nothing, before and after it
 * learns that it was fenced. The pause is what the node's monotonic clock shows after one (the
 * lease's clock jumps ahead), and the takeover is the survivor's election (the node's epoch
 * incremented in Redis): both without stopping the process, so that what the node does first
 * when it goes on is deterministic.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Redis } from "ioredis";
import type { QoS } from "../../src/codec/packets.ts";
import { Lease } from "../../src/cluster/lease.ts";
import { encodeWire } from "../../src/cluster/wire.ts";
import { RedisKeys } from "../../src/redis/keys.ts";
import { MemoryClient } from "../broker/memory_pipe.ts";
import { HAVE_REDIS, REDIS_IGNORE, startRedis } from "../helpers/redis.ts";
import { eventually, type Node, withNodes as withNodesOn } from "./harness.ts";

const redis = HAVE_REDIS ? await startRedis() : null;
const opts = { ignore: REDIS_IGNORE, sanitizeOps: false, sanitizeResources: false };
const enc = new TextEncoder();

let pid = 0;
async function subscribe(c: MemoryClient, topic: string, qos: QoS): Promise<void> {
  await c.send({ type: "subscribe", packetId: ++pid, subscriptions: [{ topic, qos }] });
  await c.next("suback");
}

/** Nodes on a fresh key prefix, a plain Redis client, and the lease clock put back after. */
async function withNodes(
  ids: string[],
  fn: (nodes: Node[], keys: RedisKeys, r: Redis) => Promise<void>,
): Promise<void> {
  const now = Lease.now;
  try {
    await withNodesOn(redis?.port, "lapsed", ids, fn);
  } finally {
    Lease.now = now;
  }
}

/**
 * Node `id` was paused for a minute and taken over meanwhile: a survivor ("n9") won the election
 * (its lock, which it holds until it has drained the node's stream, and the node's epoch moved),
 * and the node's lease clock shows the minute. (Every node of this process sees the minute; the
 * others renew their leases, which nobody took.) The returned function ends the survivor's work.
 */
async function pausedAndTakenOver(
  r: Redis,
  keys: RedisKeys,
  id: string,
): Promise<() => Promise<void>> {
  const lock = keys.global(`adopt:${id}`);
  await r.multi().set(lock, "n9", "PX", 30_000).incr(keys.global(`epoch:${id}`)).exec();
  const now = Lease.now;
  Lease.now = () => now() + 60_000;
  return async () => void await r.del(lock);
}

Deno.test({
  ...opts,
  name: "cluster: a node taken over while paused delivers nothing its stream brings to its " +
    "old subscriber, and leaves the entry to the node that took it over",
  fn: () =>
    withNodes(["n1"], async ([a], keys, r) => {
      const sub = new MemoryClient(a.broker);
      await sub.connect("lapsed-sub", false);
      await subscribe(sub, "lapsed/#", 1);
      const survivorDone = await pausedAndTakenOver(r, keys, "n1");
      // A copy another node queued for n1 before it heard of the takeover: n1's blocked read
      // returns it at once, before n1's lease timer has looked at the clock.
      const msg = {
        id: "n9:1",
        topic: "lapsed/1",
        payload: enc.encode("owned elsewhere"),
        qos: 1 as const,
        retain: false,
        createdAt: Date.now(),
      };
      const frame = Buffer.from(encodeWire({ kind: "publish", msg }));
      await r.xadd(keys.stream("n1"), "*", "m", frame);
      // It learns that it was fenced, and closes its clients.
      await sub.waitClosed(5000);
      assert.deepEqual(sub.pending("publish"), [], "delivered by a node that was taken over");
      // The entry waits, unacknowledged, for the survivor's drain (n1 rejoins only after it).
      assert.equal(await r.xlen(keys.stream("n1")), 1);
      await survivorDone();
    }),
});

Deno.test({
  ...opts,
  name: "cluster: a node taken over while paused does not acknowledge a publish it forwards " +
    "to another node",
  fn: () =>
    withNodes(["n1", "n2"], async ([a, b], keys, r) => {
      const sub = new MemoryClient(b.broker);
      await sub.connect("lapsed-sub2", false);
      await subscribe(sub, "lapsed2/#", 1);
      await eventually(() => a.link.routesFor("lapsed2/1").includes("n2"), 5000, "n1 routes");
      const pub = new MemoryClient(a.broker);
      await pub.connect("lapsed-pub");
      const survivorDone = await pausedAndTakenOver(r, keys, "n1");
      // Nobody subscribes on n1: only the copy for n2 stands between the PUBLISH and its PUBACK.
      await pub.send({
        type: "publish",
        topic: "lapsed2/1",
        payload: enc.encode("from a node taken over"),
        qos: 1,
        retain: false,
        dup: false,
        packetId: ++pid,
      });
      await pub.waitClosed(5000);
      assert.deepEqual(pub.pending("puback"), [], "acknowledged by a node that was taken over");
      await survivorDone();
      sub.close();
    }),
});
