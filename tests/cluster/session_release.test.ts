/**
 * A session released by its holder to the node where its client reconnects: what the holder's
 * stream still brings for it at any moment of the release reaches it on the new node.
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import type { QoS } from "../../src/codec/packets.ts";
import type { RedisConnOptions } from "../../src/redis/conn.ts";
import { RedisKeys } from "../../src/redis/keys.ts";
import { MemoryClient } from "../broker/memory_pipe.ts";
import { HAVE_REDIS, REDIS_IGNORE, startRedis, testPrefix } from "../helpers/redis.ts";
import { eventually, type Node, receive, startNode } from "./harness.ts";

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

Deno.test({
  ...opts,
  name: "cluster: a message the old holder's stream delivers while it releases a session " +
    "reaches the session on its new node",
  fn: async () => {
    const keyPrefix = testPrefix("release");
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
      nodes.push(await startNode(conn, "n1"), await startNode(conn, "n2"));
      const [a, b] = nodes;
      // A persistent subscriber, offline on n1.
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

      // The release on n1 forgets the session, then writes it. While it writes, a publisher on
      // n2 (where the session is not resumed yet, so n2 sends the copy to n1's stream only)
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
      const second = new MemoryClient(b.broker);
      const ack = await second.connect("rel-sub", false);
      assert.equal(ack.sessionPresent, true);
      assert.ok(during, "the release wrote the session after forgetting it");
      await during;
      const m = await receive(second, 5000);
      assert.equal(dec.decode(m.payload), "during the release");
      second.close();
      pub.close();
    } finally {
      for (const n of nodes) await n.close().catch(() => {});
      r.disconnect();
    }
  },
});
