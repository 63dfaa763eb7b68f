/**
 * A session released by its holder to the node where its client reconnects: what the holder's
 * stream still brings for it at any moment of the release, and what the new node's own
 * publishers send while it moves, reaches it on the new node; so does what a dead node's stream
 * still brings for a session adopted from it that moved on since.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Redis } from "ioredis";
import type { QoS } from "../../src/codec/packets.ts";
import type { RedisConnOptions } from "../../src/redis/conn.ts";
import { RedisKeys } from "../../src/redis/keys.ts";
import { encodeWire } from "../../src/cluster/wire.ts";
import { MemoryClient } from "../broker/memory_pipe.ts";
import { HAVE_REDIS, REDIS_IGNORE, startRedis, testPrefix } from "../helpers/redis.ts";
import { closeAll, eventually, type Node, receive, startNode, withNodes } from "./harness.ts";

const redis = HAVE_REDIS ? await startRedis() : null;
const opts = { ignore: REDIS_IGNORE, sanitizeOps: false, sanitizeResources: false };
const enc = new TextEncoder();
const dec = new TextDecoder();

let pid = 0;
async function subscribe(c: MemoryClient, topic: string, qos: QoS): Promise<void> {
  await c.send({ type: "subscribe", packetId: ++pid, subscriptions: [{ topic, qos }] });
  await c.next("suback");
}

async function publish(c: MemoryClient, topic: string, payload: string): Promise<void> {
  const packetId = ++pid;
  await c.send({
    type: "publish",
    topic,
    payload: enc.encode(payload),
    qos: 1,
    retain: false,
    dup: false,
    packetId,
  });
  await c.next("puback");
}

/** Two nodes; a persistent subscriber to rel/# offline on n1; a publisher on n2. */
async function moving(
  fn: (a: Node, b: Node, pub: MemoryClient, keys: RedisKeys, r: Redis) => Promise<void>,
): Promise<void> {
  await withNodes(redis?.port, "release", ["n1", "n2"], async ([a, b], keys, r) => {
    const first = new MemoryClient(a.broker);
    await first.connect("rel-sub", false);
    await subscribe(first, "rel/#", 1);
    first.close();
    await eventually(
      () => a.broker.sessions.get("rel-sub")?.client === null,
      5000,
      "the subscriber offline on n1",
    );
    const pub = new MemoryClient(b.broker);
    await pub.connect("rel-pub");
    await eventually(() => b.link.routesFor("rel/1").includes("n1"), 5000, "n2 routes to n1");
    await fn(a, b, pub, keys, r);
    pub.close();
  });
}

/** The subscriber connects to n2: its session moves there; returns the new connection. */
async function moveToN2(b: Node): Promise<MemoryClient> {
  const second = new MemoryClient(b.broker);
  const ack = await second.connect("rel-sub", false);
  assert.equal(ack.sessionPresent, true);
  return second;
}

Deno.test({
  ...opts,
  name: "cluster: a message the old holder's stream delivers while it releases a session " +
    "reaches the session on its new node",
  fn: () =>
    moving(async (a, b, pub, keys, r) => {
      // The release on n1 forgets the session, then writes it. While it writes, the publisher
      // on n2 (where the session is not resumed yet, so n2 sends the copy to n1's stream only)
      // publishes, and n1 delivers that stream entry and acknowledges it. The store's flush is
      // wrapped to put the publish exactly into that moment.
      const stream = keys.stream("n1");
      const flush = a.store.flush.bind(a.store);
      let moving = false;
      let during: Promise<void> | null = null;
      a.store.flush = () => {
        if (!moving || during || a.broker.sessions.get("rel-sub")) return flush();
        during = (async () => {
          await publish(pub, "rel/1", "during the release");
          await eventually(async () => (await r.xlen(stream)) === 0, 5000, "n1 read its stream");
        })();
        return during.then(flush);
      };
      moving = true;
      const second = await moveToN2(b);
      assert.ok(during, "the release wrote the session after forgetting it");
      await during;
      assert.equal(dec.decode((await receive(second, 5000)).payload), "during the release");
      second.close();
    }),
});

Deno.test({
  ...opts,
  name: "cluster: a message published on a session's new node after the old holder stopped " +
    "routing it, before the session is resumed there, reaches the session",
  fn: () =>
    moving(async (_a, b, pub) => {
      // n1 released the session and withdrew its route (its only subscriber left); n2 loads the
      // session next. A publish on n2 right then has no subscriber on n2 yet and no route to
      // n1 any more. Loading the session is wrapped to put the publish exactly there.
      const load = b.store.loadSession.bind(b.store);
      let during: Promise<void> | null = null;
      b.store.loadSession = (id) => {
        if (id !== "rel-sub" || during) return load(id);
        during = (async () => {
          await eventually(() => !b.link.routesFor("rel/1").includes("n1"), 5000, "route gone");
          await publish(pub, "rel/1", "while it moves");
        })();
        return during.then(() => load(id));
      };
      const second = await moveToN2(b);
      assert.ok(during, "n2 loaded the session");
      assert.equal(dec.decode((await receive(second, 5000)).payload), "while it moves");
      second.close();
    }),
});

Deno.test({
  ...opts,
  name: "cluster: a late copy from a dead node's stream reaches its adopted session that moved " +
    "on to a node which had the message already for another subscriber",
  fn: async () => {
    const keyPrefix = testPrefix("late");
    const conn: RedisConnOptions = {
      mode: "normal",
      host: "127.0.0.1",
      port: redis?.port ?? 1,
      keyPrefix,
    };
    const keys = new RedisKeys(keyPrefix);
    const r = new Redis({ port: redis?.port ?? 1, lazyConnect: true });
    const nodes: Node[] = [];
    try {
      await r.connect();
      for (const id of ["n1", "n2", "n3"]) nodes.push(await startNode(conn, id));
      const [a, b, c] = nodes;
      const first = new MemoryClient(a.broker);
      await first.connect("late-sub", false);
      await subscribe(first, "late/#", 1);
      first.close();
      const other = new MemoryClient(b.broker);
      await other.connect("late-other");
      await subscribe(other, "late/#", 1);
      await eventually(
        () => c.link.routesFor("late/1").length === 2,
        5000,
        "n3 routes to n1 and n2",
      );
      // n1 goes; the subscriber reconnects to n3, which takes n1 over at once and resumes it.
      await a.close();
      const onC = new MemoryClient(c.broker);
      assert.equal((await onC.connect("late-sub", false)).sessionPresent, true);
      // A node that had not heard of n1's death yet sent a message to n1 (for the subscriber)
      // and to n2 (for its own subscriber), which delivers it.
      const msg = {
        id: "n9:1",
        topic: "late/1",
        payload: enc.encode("late"),
        qos: 1 as const,
        retain: false,
        createdAt: Date.now(),
      };
      const frame = Buffer.from(encodeWire({ kind: "publish", msg }));
      await r.xadd(keys.stream("n1"), "*", "m", frame);
      await r.xadd(keys.stream("n2"), "*", "m", frame);
      assert.equal(dec.decode((await receive(other, 5000)).payload), "late");
      // The subscriber moves on to n2 before n3 drains n1's stream again (2 × node-timeout after
      // the takeover): n3 passes the late copy on to n2, for the subscriber alone.
      onC.close();
      await eventually(
        () => c.broker.sessions.get("late-sub")?.client === null,
        5000,
        "the subscriber offline on n3",
      );
      const onB = new MemoryClient(b.broker);
      assert.equal((await onB.connect("late-sub", false)).sessionPresent, true);
      assert.equal(dec.decode((await receive(onB, 10_000)).payload), "late");
      onB.close();
      other.close();
    } finally {
      await closeAll(nodes);
      r.disconnect();
    }
  },
});
