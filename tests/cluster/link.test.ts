/** Three in-process nodes over one Redis (and over a Redis Cluster): the cluster semantics. */
import assert from "node:assert/strict";
import type { QoS } from "../../src/codec/packets.ts";
import { MemoryClient } from "../broker/memory_pipe.ts";
import {
  HAVE_REDIS,
  REDIS_IGNORE,
  startRedis,
  startRedisCluster,
  testPrefix,
} from "../helpers/redis.ts";
import type { RedisConnOptions } from "../../src/redis/conn.ts";
import { eventually, type Node, receive, startNode } from "./harness.ts";
import { RetainedReplica } from "../../src/cluster/retained.ts";
import { RouteTable } from "../../src/cluster/routes.ts";
import { Redis } from "ioredis";
import { RedisKeys } from "../../src/redis/keys.ts";
import { encodeWire } from "../../src/cluster/wire.ts";

const standalone = HAVE_REDIS ? await startRedis() : null;
const rcluster = HAVE_REDIS ? await startRedisCluster() : null;

const enc = new TextEncoder();
const dec = new TextDecoder();

function redisFor(kind: "standalone" | "cluster"): RedisConnOptions {
  const keyPrefix = testPrefix(kind);
  return kind === "standalone"
    ? { mode: "normal", host: "127.0.0.1", port: standalone?.port ?? 1, keyPrefix }
    : { mode: "cluster", host: "", port: 0, nodes: rcluster?.nodes ?? "", keyPrefix };
}

async function cluster(
  kind: "standalone" | "cluster",
  n: number,
  fn: (nodes: Node[], redis: RedisConnOptions) => Promise<void>,
): Promise<void> {
  const redis = redisFor(kind);
  const nodes: Node[] = [];
  try {
    for (let i = 1; i <= n; i++) nodes.push(await startNode(redis, `n${i}`));
    await fn(nodes, redis);
  } finally {
    for (const node of nodes) await node.close().catch(() => {});
  }
}

let pid = 0;
async function subscribe(c: MemoryClient, topic: string, qos: QoS): Promise<void> {
  await c.send({ type: "subscribe", packetId: ++pid % 60000 + 1, subscriptions: [{ topic, qos }] });
  await c.next("suback");
}

async function publish(c: MemoryClient, topic: string, payload: string, qos: QoS, retain = false) {
  const packetId = qos ? ++pid % 60000 + 1 : undefined;
  await c.send({
    type: "publish",
    topic,
    payload: enc.encode(payload),
    qos,
    retain,
    dup: false,
    packetId,
  });
  if (qos === 1) await c.next("puback");
  if (qos === 2) {
    await c.next("pubrec");
    await c.send({ type: "pubrel", packetId: packetId! });
    await c.next("pubcomp");
  }
}

const opts = { ignore: REDIS_IGNORE, sanitizeOps: false, sanitizeResources: false };

for (const kind of ["standalone", "cluster"] as const) {
  Deno.test({
    ...opts,
    name:
      `cluster over ${kind} Redis: messages cross nodes at QoS 0, 1 and 2, only to subscribed nodes`,
    fn: () =>
      cluster(kind, 3, async ([a, b, c]) => {
        const sub = new MemoryClient(a.broker);
        await sub.connect("sub");
        await subscribe(sub, "x/+", 2);
        await eventually(() => b.link.routesFor("x/1").includes("n1"), 5000, "route on n2");
        // Pub/sub reaches each node on its own schedule (Redis Cluster relays between shards).
        await eventually(() => c.link.routesFor("x/1").includes("n1"), 5000, "route on n3");
        assert.deepEqual(c.link.routesFor("x/1"), ["n1"]);
        assert.deepEqual(b.link.routesFor("y"), []);
        const pub = new MemoryClient(b.broker);
        await pub.connect("pub");
        for (const qos of [0, 1, 2] as const) {
          await publish(pub, "x/1", `hello ${qos}`, qos);
          const m = await receive(sub);
          assert.equal(dec.decode(m.payload), `hello ${qos}`);
          assert.equal(m.qos, qos);
        }
        // Order is kept across the hop.
        for (let i = 0; i < 50; i++) await publish(pub, "x/o", `m${i}`, 1);
        for (let i = 0; i < 50; i++) {
          assert.equal(dec.decode((await receive(sub)).payload), `m${i}`);
        }
        // Unsubscribing removes the route everywhere.
        await sub.send({ type: "unsubscribe", packetId: 77, topics: ["x/+"] });
        await sub.next("unsuback");
        await eventually(() => b.link.routesFor("x/1").length === 0, 5000, "route removal");
        sub.close();
        pub.close();
      }),
  });

  Deno.test({
    ...opts,
    name:
      `cluster over ${kind} Redis: a session taken over on another node closes the old connection and publishes the will once`,
    fn: () =>
      cluster(kind, 2, async ([a, b]) => {
        const watcher = new MemoryClient(a.broker);
        await watcher.connect("watcher");
        await subscribe(watcher, "will/#", 1);
        await eventually(() => b.link.routesFor("will/x").includes("n1"));
        const first = new MemoryClient(b.broker);
        const ack = await first.connect("dev", false, {
          will: { topic: "will/dev", payload: enc.encode("gone"), qos: 1, retain: false },
        });
        assert.equal(ack.reasonCode, 0);
        const second = new MemoryClient(a.broker);
        await second.connect("dev", false);
        await first.waitClosed(5000);
        const w = await receive(watcher);
        assert.equal(dec.decode(w.payload), "gone");
        // A second copy of the will would have been forwarded through n2's stream before this
        // marker, published on n2 after the move: the marker must be the next message.
        const marker = new MemoryClient(b.broker);
        await marker.connect("marker");
        await publish(marker, "will/marker", "after", 1);
        assert.equal((await receive(watcher)).topic, "will/marker", "the will came twice");
        marker.close();
        assert.ok(a.broker.sessions.has("dev"));
        assert.ok(!b.broker.sessions.has("dev"));
        second.close();
        watcher.close();
      }),
  });

  Deno.test({
    ...opts,
    name:
      `cluster over ${kind} Redis: a persistent session resumed on another node gets its queued messages`,
    fn: () =>
      cluster(kind, 2, async ([a, b]) => {
        const s1 = new MemoryClient(a.broker);
        await s1.connect("p1", false);
        await subscribe(s1, "q/#", 1);
        // Receive one but do not acknowledge it: it stays in flight.
        const pub = new MemoryClient(b.broker);
        await pub.connect("pubber");
        await eventually(() => b.link.routesFor("q/1").includes("n1"));
        await publish(pub, "q/1", "inflight", 1);
        await s1.next("publish");
        s1.close();
        await eventually(() => a.broker.sessions.get("p1")?.client === null, 5000, "disconnect");
        for (let i = 0; i < 5; i++) await publish(pub, "q/1", `queued ${i}`, 1);
        const s2 = new MemoryClient(b.broker);
        const ack = await s2.connect("p1", false);
        assert.equal(ack.sessionPresent, true);
        const got: string[] = [];
        for (let i = 0; i < 6; i++) got.push(dec.decode((await receive(s2)).payload));
        assert.deepEqual(got, [
          "inflight",
          "queued 0",
          "queued 1",
          "queued 2",
          "queued 3",
          "queued 4",
        ]);
        assert.ok(!a.broker.sessions.has("p1"));
        // Its subscription now lives on n2: messages from n1 reach it there.
        const pub1 = new MemoryClient(a.broker);
        await pub1.connect("pub1");
        await eventually(() => a.link.routesFor("q/2").includes("n2"));
        await publish(pub1, "q/2", "after move", 1);
        assert.equal(dec.decode((await receive(s2)).payload), "after move");
        s2.close();
        pub.close();
        pub1.close();
      }),
  });

  Deno.test({
    ...opts,
    name:
      `cluster over ${kind} Redis: retained messages and their deletion are seen from every node`,
    fn: () =>
      cluster(kind, 3, async ([a, b, c]) => {
        const pub = new MemoryClient(a.broker);
        await pub.connect("rpub");
        await publish(pub, "r/1", "kept", 1, true);
        // RetainedIndex.get gives null, not undefined, for a topic it does not hold.
        await eventually(() => c.broker.retained.get("r/1") !== null, 5000, "retained on n3");
        // Each node learns it from its own pub/sub delivery (Redis Cluster relays per shard).
        await eventually(() => b.broker.retained.get("r/1") !== null, 5000, "retained on n2");
        const s = new MemoryClient(b.broker);
        await s.connect("rsub");
        await subscribe(s, "r/#", 1);
        const m = await receive(s);
        assert.equal(dec.decode(m.payload), "kept");
        assert.equal(m.retain, true);
        await publish(pub, "r/1", "", 1, true);
        await eventually(() => !c.broker.retained.get("r/1"), 5000, "deletion on n3");
        // A node started later loads it from the store.
        const d = await (await import("./harness.ts")).startNode(
          { ...b.store.options },
          "n4",
        );
        try {
          assert.equal(d.broker.retained.get("r/1") ?? null, null);
        } finally {
          await d.close();
        }
        s.close();
        pub.close();
      }),
  });
}

Deno.test({
  ...opts,
  name: "cluster: a retained message that arrives while a reload reads its snapshot survives it",
  fn: () =>
    cluster("standalone", 2, async ([a, b]) => {
      // Hold b's next retained reload between reading its snapshot and applying it.
      const store = b.store as unknown as { loadRetained: () => Promise<unknown[]> };
      const load = store.loadRetained.bind(store);
      const { promise: snapshotRead, resolve: readDone } = Promise.withResolvers<void>();
      const { promise: gate, resolve: openGate } = Promise.withResolvers<void>();
      const { promise: applied, resolve: appliedDone } = Promise.withResolvers<void>();
      let held = false;
      let released = false;
      store.loadRetained = async () => {
        const snapshot = await load();
        if (held) return snapshot;
        held = true;
        readDone();
        await gate;
        released = true;
        return snapshot;
      };
      // Told when that reload has applied its snapshot.
      const proto = RetainedReplica.prototype as unknown as { reload(): Promise<void> };
      const reload = proto.reload;
      proto.reload = async function (this: { ctx: { store: unknown } }) {
        await reload.call(this);
        if (released && this.ctx.store === store) appliedDone();
      };
      // A Redis blip: pub/sub connections reconnect, and a node reloads its view on "ready".
      await standalone!.cli("client", "kill", "type", "pubsub");
      await snapshotRead;

      const pub = new MemoryClient(a.broker);
      await pub.connect("race-pub");
      await publish(pub, "race/1", "fresh", 1, true);
      await eventually(() => b.broker.retained.get("race/1") !== null, 5000, "live retained on n2");
      openGate();
      await applied;
      proto.reload = reload;
      assert.equal(
        dec.decode(b.broker.retained.get("race/1")?.payload),
        "fresh",
        "the older snapshot must not delete what arrived live",
      );
      pub.close();
    }),
});

Deno.test({
  ...opts,
  name: "cluster: a route announced while a reload reads the route tables survives it",
  fn: async () => {
    // Hold n2's next read of n1's route table between Redis's answer and its use.
    const proto = Redis.prototype as unknown as {
      smembers: (this: Redis, key: string) => Promise<string[]>;
    };
    const smembers = proto.smembers;
    const { promise: tableRead, resolve: readDone } = Promise.withResolvers<void>();
    const { promise: gate, resolve: openGate } = Promise.withResolvers<void>();
    let armed = false;
    // Told when n2's reload that read the held table has applied it.
    const routes = RouteTable.prototype as unknown as { reload(): Promise<void> };
    const reload = routes.reload;
    const { promise: reloaded, resolve: reloadDone } = Promise.withResolvers<void>();
    let opened = false;
    routes.reload = async function (this: { ctx: { me: string } }) {
      await reload.call(this);
      if (opened && this.ctx.me === "n2") reloadDone();
    };
    proto.smembers = async function (key) {
      const table = await smembers.call(this, key);
      if (armed && this.options.connectionName === "mqttwk-cluster-n2" && key.endsWith(":n1")) {
        armed = false;
        readDone();
        await gate;
      }
      return table;
    };
    try {
      await cluster("standalone", 2, async ([a, b]) => {
        armed = true;
        // A Redis blip: pub/sub connections reconnect, and a node reloads its view on "ready".
        await standalone!.cli("client", "kill", "type", "pubsub");
        await tableRead;
        const s = new MemoryClient(a.broker);
        await s.connect("race-sub");
        await subscribe(s, "race/#", 1);
        await eventually(() => b.link.routesFor("race/x").includes("n1"), 5000, "live route");
        opened = true;
        openGate();
        await reloaded;
        assert.deepEqual(b.link.routesFor("race/x"), ["n1"], "the older table must not drop it");
        const pub = new MemoryClient(b.broker);
        await pub.connect("race-pub");
        await publish(pub, "race/x", "routed", 1);
        assert.equal(dec.decode((await receive(s)).payload), "routed");
        pub.close();
        s.close();
      });
    } finally {
      proto.smembers = smembers;
      routes.reload = reload;
      openGate();
    }
  },
});

Deno.test({
  ...opts,
  name: "cluster: a second live node with the same node id is refused with a clear error",
  fn: () =>
    cluster("standalone", 1, async (_nodes, redis) => {
      await assert.rejects(
        startNode(redis, "n1", { nodeTimeoutMs: 500 }),
        /node id "n1" is already in use by another live node/,
      );
    }),
});

Deno.test({
  ...opts,
  name: "cluster: a node that stops hands its offline sessions and queued messages to a survivor",
  fn: () =>
    cluster("standalone", 2, async ([a, b]) => {
      const s = new MemoryClient(a.broker);
      await s.connect("keep", false);
      await subscribe(s, "k/#", 1);
      s.close();
      await eventually(() => a.broker.sessions.get("keep")?.client === null);
      await a.close();
      const pub = new MemoryClient(b.broker);
      await pub.connect("kp");
      // Until n2 takes over, messages go to n1's stream; afterwards to n2 itself.
      for (let i = 0; i < 10; i++) await publish(pub, "k/1", `m${i}`, 1);
      await eventually(() => b.broker.sessions.has("keep"), 10_000, "takeover");
      for (let i = 10; i < 20; i++) await publish(pub, "k/1", `m${i}`, 1);
      const s2 = new MemoryClient(b.broker);
      const ack = await s2.connect("keep", false);
      assert.equal(ack.sessionPresent, true);
      const got = new Set<string>();
      while (got.size < 20) got.add(dec.decode((await receive(s2, 10_000)).payload));
      s2.close();
      pub.close();
    }),
});

Deno.test({
  ...opts,
  name: "cluster: a persistent subscriber moving between nodes while a third node publishes " +
    "misses nothing",
  fn: () =>
    cluster("standalone", 3, async ([a, b, c]) => {
      const pub = new MemoryClient(c.broker);
      await pub.connect("mv-pub");
      let sub = new MemoryClient(a.broker);
      await sub.connect("mv-sub", false);
      await subscribe(sub, "mv/#", 1);
      await eventually(() => c.link.routesFor("mv/1").includes("n1"), 5000, "route to n1");
      let sent = 0;
      let running = true;
      const publishing = (async () => {
        while (running) await publish(pub, "mv/1", String(++sent), 1);
      })();
      const got = new Set<number>();
      // Each move: the new node asks the old one to release the session while messages flow;
      // a copy sent only to the old holder after it let go would be lost.
      const nodes = [a, b];
      for (let move = 1; move <= 8; move++) {
        for (let i = 0; i < 20; i++) {
          got.add(Number(dec.decode((await receive(sub, 10_000)).payload)));
        }
        const from = nodes[(move - 1) % 2];
        sub.close();
        await eventually(
          () => from.broker.sessions.get("mv-sub")?.client === null,
          5000,
          "the subscriber offline",
        );
        sub = new MemoryClient(nodes[move % 2].broker);
        assert.equal((await sub.connect("mv-sub", false)).sessionPresent, true);
      }
      running = false;
      await publishing;
      const missing = () =>
        Array.from({ length: sent }, (_, i) => i + 1).filter((n) => !got.has(n));
      try {
        while (missing().length > 0) {
          got.add(Number(dec.decode((await receive(sub, 10_000)).payload)));
        }
      } catch { /* what is still missing is the answer */ }
      assert.deepEqual(missing(), [], `${sent} published`);
      sub.close();
      pub.close();
    }),
});

Deno.test({
  ...opts,
  name:
    "cluster: entries left pending by a read whose answer was lost are delivered once the reader reconnects",
  fn: () =>
    cluster("standalone", 2, async ([a, b], redis) => {
      const sub = new MemoryClient(b.broker);
      await sub.connect("lost-sub", false);
      await subscribe(sub, "lost/1", 1);
      await eventually(() => a.link.routeTable().get(b.id)?.includes("lost/1") ?? false);
      // An entry for n2 that a read takes into n2's pending list whose answer never reaches n2
      // (as when the connection breaks right after Redis answered): the read runs inside the
      // MULTI of the XADD, so the blocked reader of n2 is not served it.
      const key = new RedisKeys(redis.keyPrefix).stream(b.id);
      const frame = encodeWire({
        kind: "publish",
        msg: {
          id: "lost-test-1",
          topic: "lost/1",
          payload: enc.encode("once read, then lost"),
          qos: 1,
          retain: false,
          createdAt: Date.now(),
        },
      });
      const r = new Redis({ host: "127.0.0.1", port: standalone!.port, lazyConnect: true });
      await r.connect();
      try {
        const res = await r.multi()
          .xadd(key, "*", "m", frame)
          .xreadgroup("GROUP", "mqttwk", b.id, "COUNT", 10, "STREAMS", key, ">")
          .exec();
        assert.equal(res?.[1]?.[0], null, "the read took the entry");
        const pending = await r.xpending(key, "mqttwk") as [number, ...unknown[]];
        assert.equal(pending[0], 1, "the entry is pending for n2");
        // n2's reader connection breaks; its client resends the blocked read on reconnecting.
        const clients = await r.client("LIST") as string;
        const line = clients.split("\n").find((l) => l.includes(`name=mqttwk-reader-${b.id} `));
        assert.ok(line, "n2's reader connection");
        await r.client("KILL", "ID", line.match(/\bid=(\d+)/)![1]);
        const p = await receive(sub, 10_000);
        assert.equal(dec.decode(p.payload), "once read, then lost");
        await eventually(
          async () => ((await r.xpending(key, "mqttwk")) as [number])[0] === 0,
          5000,
          "the entry acknowledged",
        );
      } finally {
        r.disconnect();
        sub.close();
      }
    }),
});
