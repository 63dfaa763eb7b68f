/**
 * Shared subscriptions across two in-process nodes over a real Redis: one receiver per group and
 * message in the whole cluster (4.8.2), spread by the strategy, and redelivery across nodes.
 */
import assert from "node:assert/strict";
import type { PublishPacket, QoS } from "../../src/codec/packets.ts";
import { MemoryClient } from "../broker/memory_pipe.ts";
import { HAVE_REDIS, REDIS_IGNORE, startRedis, testPrefix } from "../helpers/redis.ts";
import { eventually, type Node, startNode, twoNodes } from "./harness.ts";

const standalone = HAVE_REDIS ? await startRedis() : null;
const enc = new TextEncoder();
const dec = new TextDecoder();
const opts = { ignore: REDIS_IGNORE, sanitizeOps: false, sanitizeResources: false };

async function client(node: Node, id: string, clean = true): Promise<MemoryClient> {
  const c = new MemoryClient(node.broker);
  const ack = await c.connect(id, clean);
  assert.equal(ack.reasonCode, 0);
  return c;
}

async function subscribe(c: MemoryClient, topic: string, qos: QoS): Promise<void> {
  await c.send({ type: "subscribe", packetId: 1, subscriptions: [{ topic, qos }] });
  assert.deepEqual((await c.next("suback")).reasonCodes, [qos]);
}

let pid = 0;
async function publish(c: MemoryClient, topic: string, payload: string, qos: QoS): Promise<void> {
  const packetId = qos ? ++pid % 60000 + 1 : undefined;
  await c.send({
    type: "publish",
    topic,
    payload: enc.encode(payload),
    qos,
    retain: false,
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

/** Acknowledges and records every PUBLISH `c` receives until stopped (`ack` false: never acks). */
function receiver(c: MemoryClient, ack = true) {
  const got: string[] = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      const list = c.pending("publish") as PublishPacket[];
      for (const p of list) {
        await c.next("publish");
        got.push(dec.decode(p.payload));
        if (!ack) continue;
        if (p.qos === 1) await c.send({ type: "puback", packetId: p.packetId! });
        if (p.qos === 2) {
          await c.send({ type: "pubrec", packetId: p.packetId! });
          await c.next("pubrel");
          await c.send({ type: "pubcomp", packetId: p.packetId! });
        }
      }
      if (list.length === 0) await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return {
    got,
    stop: async () => {
      on = false;
      await loop;
    },
  };
}

function assertExactlyOnce(got: string[][], n: number): void {
  const all = got.flat().map(Number).sort((a, b) => a - b);
  assert.equal(all.length, n, `${n} deliveries in all, got ${got.map((g) => g.length)}`);
  assert.deepEqual(all, Array.from({ length: n }, (_, i) => i), "every message exactly once");
}

Deno.test({
  name:
    "1,000 QoS 1 messages to a group with members on both nodes: each delivered exactly once, round robin across the nodes; a plain subscriber still gets all [4.8.2]",
  ...opts,
  fn: () =>
    twoNodes(standalone?.port, "shared", async (n1, n2) => {
      const a = await client(n1, "a");
      const b = await client(n2, "b");
      const plain = await client(n2, "plain");
      await subscribe(a, "$share/g/load/+", 1);
      await subscribe(b, "$share/g/load/+", 1);
      await subscribe(plain, "load/#", 1);
      // The SUBACK waits for the announcement; n1 knows n2's member once it is applied there.
      await eventually(() => n1.link.routeTable().get("n2")?.includes("$share/g/load/+") ?? false);
      await eventually(() => n2.link.routeTable().get("n1")?.includes("$share/g/load/+") ?? false);
      const ra = receiver(a);
      const rb = receiver(b);
      const rp = receiver(plain);
      const pub = await client(n1, "pub");
      const pub2 = await client(n2, "pub2");
      for (let i = 0; i < 1000; i++) {
        // Half enter on each node.
        await publish(i % 2 === 0 ? pub : pub2, "load/x", String(i), 1);
      }
      await eventually(() => ra.got.length + rb.got.length === 1000 && rp.got.length === 1000);
      for (const r of [ra, rb, rp]) await r.stop();
      assertExactlyOnce([ra.got, rb.got], 1000);
      assertExactlyOnce([rp.got], 1000);
      // Round robin over {local member, the other node} on each node: an even split.
      assert.equal(ra.got.length, 500);
      assert.equal(rb.got.length, 500);
      for (const c of [a, b, plain, pub, pub2]) c.close();
    }),
});

Deno.test({
  name: "QoS 0 and QoS 2 to a spread group: once each, per group; a group only on the other node",
  ...opts,
  fn: () =>
    twoNodes(standalone?.port, "shared", async (n1, n2) => {
      const a = await client(n1, "a");
      const b = await client(n2, "b");
      const c = await client(n2, "c");
      await subscribe(a, "$share/g/mix", 2);
      await subscribe(b, "$share/g/mix", 2);
      await subscribe(c, "$queue/mix", 2); // only on n2
      await eventually(() => (n1.link.routeTable().get("n2") ?? []).length === 2);
      const [ra, rb, rc] = [receiver(a), receiver(b), receiver(c)];
      const pub = await client(n1, "pub");
      for (let i = 0; i < 100; i++) await publish(pub, "mix", String(i), i % 2 === 0 ? 0 : 2);
      await eventually(() => ra.got.length + rb.got.length === 100 && rc.got.length === 100);
      for (const r of [ra, rb, rc]) await r.stop();
      assertExactlyOnce([ra.got, rb.got], 100);
      assertExactlyOnce([rc.got], 100);
      for (const x of [a, b, c, pub]) x.close();
    }),
});

Deno.test({
  name: "a member's last node leaving the group: every message goes to the remaining node's member",
  ...opts,
  fn: () =>
    twoNodes(standalone?.port, "shared", async (n1, n2) => {
      const a = await client(n1, "a");
      const b = await client(n2, "b");
      await subscribe(a, "$share/g/left", 1);
      await subscribe(b, "$share/g/left", 1);
      await eventually(() => n1.link.routeTable().get("n2")?.includes("$share/g/left") ?? false);
      b.close();
      await eventually(() => !(n1.link.routeTable().get("n2") ?? []).includes("$share/g/left"));
      const ra = receiver(a);
      const pub = await client(n1, "pub");
      for (let i = 0; i < 20; i++) await publish(pub, "left", String(i), 1);
      await eventually(() => ra.got.length === 20);
      await ra.stop();
      assertExactlyOnce([ra.got], 20);
      a.close();
      pub.close();
    }),
});

Deno.test({
  name:
    "a member that disconnects with unacknowledged QoS 1 messages has them redelivered to a member on the other node [4.8.2]",
  ...opts,
  fn: () =>
    twoNodes(standalone?.port, "shared", async (n1, n2) => {
      const a = await client(n1, "a");
      const b = await client(n2, "b");
      await subscribe(a, "$share/g/redo", 1);
      await subscribe(b, "$share/g/redo", 1);
      await eventually(() => n2.link.routeTable().get("n1")?.includes("$share/g/redo") ?? false);
      const rb = receiver(b, false); // never acknowledges
      const pub = await client(n1, "pub");
      for (let i = 0; i < 10; i++) await publish(pub, "redo", String(i), 1);
      await eventually(() => rb.got.length === 5);
      await rb.stop();
      const ra = receiver(a);
      await eventually(() => ra.got.length === 5);
      b.close(); // its 5 unacknowledged messages go to a, on n1
      await eventually(() => ra.got.length === 10);
      await ra.stop();
      assertExactlyOnce([ra.got], 10);
      a.close();
      pub.close();
    }),
});

Deno.test({
  name:
    "a message for a group picked for a node whose only member may not read the topic (partly denied filter) goes on to a member on another node, not dropped [4.8.2]",
  ...opts,
  fn: async () => {
    // "bob" may subscribe to acl/# but not read acl/secret: each message is checked on delivery.
    const authorizer = {
      canPublish: () => true,
      canSubscribe: (c: { clientId: string }, t: string) =>
        !(c.clientId === "bob" && t === "acl/secret"),
      checkEachDelivery: (c: { clientId: string }) => c.clientId === "bob",
    };
    const redis = {
      mode: "normal" as const,
      host: "127.0.0.1",
      port: standalone?.port ?? 1,
      keyPrefix: testPrefix("shared-acl"),
    };
    const nodes: Node[] = [];
    try {
      for (const id of ["n1", "n2", "n3"]) nodes.push(await startNode(redis, id, { authorizer }));
      const [n1, n2, n3] = nodes;
      const bob = await client(n2, "bob");
      const alice = await client(n3, "alice");
      await subscribe(bob, "$share/g/acl/#", 1);
      await subscribe(alice, "$share/g/acl/#", 1);
      for (const n of ["n2", "n3"]) {
        await eventually(() => n1.link.routeTable().get(n)?.includes("$share/g/acl/#") ?? false);
      }
      await eventually(() => n2.link.routeTable().get("n3")?.includes("$share/g/acl/#") ?? false);
      const rb = receiver(bob);
      const ra = receiver(alice);
      const pub = await client(n1, "pub");
      // Round robin on n1 picks n2 and n3 in turn: half of them reach n2 first.
      const n = 20;
      for (let i = 0; i < n; i++) await publish(pub, "acl/secret", String(i), 1);
      await publish(pub, "acl/open", "open", 1);
      await eventually(() => ra.got.length + rb.got.length === n + 1, 5000, "every message");
      for (const r of [ra, rb]) await r.stop();
      assert.ok(!rb.got.some((p) => p !== "open"), `bob read acl/secret: ${rb.got}`);
      assertExactlyOnce([ra.got.filter((p) => p !== "open")], n);
      for (const c of [bob, alice, pub]) c.close();
    } finally {
      for (const node of nodes) await node.close().catch(() => {});
    }
  },
});
