/**
 * The router's topic -> targets cache under subscription changes: a SUBSCRIBE, UNSUBSCRIBE or
 * re-SUBSCRIBE patches only the cached routes its filter matches, for its session only. Every
 * delivery after a change must be what a router without a cache computes: a stale target (old
 * QoS, lost No Local, a missing or extra session, old Subscription Identifiers) fails here.
 */
import assert from "node:assert/strict";
import type { QoS } from "../../src/codec/packets.ts";
import type { Delivery } from "../../src/broker/delivery.ts";
import type { StoredMessage } from "../../src/broker/model.ts";
import { Router } from "../../src/broker/router.ts";
import type { Session } from "../../src/broker/session.ts";
import { SubscriptionTable, type SubValue } from "../../src/broker/subscriptions.ts";
import { topicMatches } from "../../src/broker/topic.ts";
import { TopicIndex } from "../../src/broker/topic_index.ts";
import { TopicTree } from "../../src/broker/topic_tree.ts";
import {
  assertNone,
  connected,
  drop,
  publish,
  publishAcked,
  subscribe,
  text,
  unsubscribe,
  withBroker,
} from "./harness.ts";
import { connected5, subscribe5 } from "./mqtt5_harness.ts";

/** What one delivery was: the session, QoS, RETAIN and identifiers the router chose. */
type Sent = string;

/** A Delivery that records what the router asked of it, for a session map of stand-ins. */
function recorder(): { delivery: Delivery; sent: Sent[] } {
  const sent: Sent[] = [];
  const delivery = {
    deliver(
      s: Session,
      _msg: StoredMessage,
      qos: QoS,
      retain: boolean,
      _single: boolean,
      ids: number[] | null,
    ) {
      sent.push(`${s.clientId} q${qos} r${retain ? 1 : 0} ids[${ids?.join(",") ?? ""}]`);
    },
  } as unknown as Delivery;
  return { delivery, sent };
}

function sessions(ids: string[]): Map<string, Session> {
  return new Map(ids.map((id) => [id, { clientId: id } as unknown as Session]));
}

let serial = 0;
function message(topic: string, qos: QoS, origin: string, retain = true): StoredMessage {
  return {
    id: `m${serial++}`,
    topic,
    payload: new Uint8Array(),
    qos,
    retain,
    createdAt: 0,
    origin,
  };
}

function sub(qos: QoS, o: Partial<SubValue> = {}): SubValue {
  return {
    qos,
    noLocal: false,
    retainAsPublished: false,
    subscriptionId: 0,
    checkEachDelivery: false,
    ...o,
  };
}

/** A cached router and its deliveries, sorted (the order among sessions is not specified). */
function setup(clients: string[]) {
  const table = new SubscriptionTable(undefined);
  const { delivery, sent } = recorder();
  const router = new Router(table, sessions(clients), delivery);
  // Each topic twice: a topic is cached when it is routed the second time, and both must agree.
  const route = (topic: string, origin = "publisher", qos: QoS = 2) => {
    const once = () => {
      sent.length = 0;
      router.route(message(topic, qos, origin));
      return sent.slice().sort();
    };
    const first = once();
    assert.deepEqual(once(), first, `${topic} routed again`);
    return first;
  };
  return { table, route };
}

Deno.test("route cache: a re-SUBSCRIBE with another QoS changes the QoS of the next delivery", () => {
  const { table, route } = setup(["a", "b"]);
  table.add("t/1", "a", sub(0));
  table.add("t/+", "b", sub(1));
  assert.deepEqual(route("t/1"), ["a q0 r0 ids[]", "b q1 r0 ids[]"]);
  table.add("t/1", "a", sub(2));
  assert.deepEqual(route("t/1"), ["a q2 r0 ids[]", "b q1 r0 ids[]"]);
  table.add("t/1", "a", sub(1));
  assert.deepEqual(route("t/1"), ["a q1 r0 ids[]", "b q1 r0 ids[]"]);
});

Deno.test("route cache: UNSUBSCRIBE and SUBSCRIBE again take the session out of and back into a cached route", () => {
  const { table, route } = setup(["a", "b"]);
  table.add("t/#", "a", sub(1));
  table.add("t/x", "b", sub(1));
  assert.deepEqual(route("t/x"), ["a q1 r0 ids[]", "b q1 r0 ids[]"]);
  assert.deepEqual(route("t/y"), ["a q1 r0 ids[]"]);
  table.remove("t/#", "a");
  assert.deepEqual(route("t/x"), ["b q1 r0 ids[]"]);
  assert.deepEqual(route("t/y"), []);
  table.add("t/#", "a", sub(0));
  assert.deepEqual(route("t/x"), ["a q0 r0 ids[]", "b q1 r0 ids[]"]);
  assert.deepEqual(route("t/y"), ["a q0 r0 ids[]"]);
  // A new session on a cached route that had none.
  table.add("+/y", "b", sub(2));
  assert.deepEqual(route("t/y"), ["a q0 r0 ids[]", "b q2 r0 ids[]"]);
});

Deno.test("route cache: overlapping wildcards keep the highest QoS as one of them comes and goes [MQTT-3.3.4-2]", () => {
  const { table, route } = setup(["a"]);
  table.add("s/+/t", "a", sub(0));
  assert.deepEqual(route("s/1/t"), ["a q0 r0 ids[]"]);
  table.add("s/#", "a", sub(2));
  assert.deepEqual(route("s/1/t"), ["a q2 r0 ids[]"]);
  table.add("#", "a", sub(1));
  assert.deepEqual(route("s/1/t"), ["a q2 r0 ids[]"]);
  table.remove("s/#", "a");
  assert.deepEqual(route("s/1/t"), ["a q1 r0 ids[]"]);
  table.remove("#", "a");
  assert.deepEqual(route("s/1/t"), ["a q0 r0 ids[]"]);
  table.remove("s/+/t", "a");
  assert.deepEqual(route("s/1/t"), []);
});

Deno.test("route cache: No Local added, dropped and overlapped on a cached route [MQTT-3.8.3-3]", () => {
  const { table, route } = setup(["a", "b"]);
  table.add("n/1", "a", sub(1));
  table.add("n/1", "b", sub(1));
  assert.deepEqual(route("n/1", "a"), ["a q1 r0 ids[]", "b q1 r0 ids[]"]);
  table.add("n/1", "a", sub(1, { noLocal: true }));
  assert.deepEqual(route("n/1", "a"), ["b q1 r0 ids[]"]);
  assert.deepEqual(route("n/1", "b"), ["a q1 r0 ids[]", "b q1 r0 ids[]"]);
  // A second, local subscription: own messages come through it (its QoS, its identifier).
  table.add("n/+", "a", sub(0, { subscriptionId: 7 }));
  assert.deepEqual(route("n/1", "a"), ["a q0 r0 ids[7]", "b q1 r0 ids[]"]);
  assert.deepEqual(route("n/1", "b"), ["a q1 r0 ids[7]", "b q1 r0 ids[]"]);
  table.add("n/1", "a", sub(1));
  assert.deepEqual(route("n/1", "a"), ["a q1 r0 ids[7]", "b q1 r0 ids[]"]);
  table.remove("n/1", "a");
  table.add("n/+", "a", sub(2, { noLocal: true }));
  assert.deepEqual(route("n/1", "a"), ["b q1 r0 ids[]"]);
});

Deno.test("route cache: Subscription Identifiers and Retain As Published follow each change [MQTT-3.3.4-3] [MQTT-3.3.1-12]", () => {
  const { table, route } = setup(["a"]);
  table.add("i/+", "a", sub(1, { subscriptionId: 5 }));
  assert.deepEqual(route("i/x"), ["a q1 r0 ids[5]"]);
  table.add("i/#", "a", sub(1, { subscriptionId: 3 }));
  assert.deepEqual(route("i/x"), ["a q1 r0 ids[3,5]"]);
  table.add("i/+", "a", sub(1, { subscriptionId: 9, retainAsPublished: true }));
  assert.deepEqual(route("i/x"), ["a q1 r1 ids[3,9]"]);
  table.add("i/+", "a", sub(1));
  assert.deepEqual(route("i/x"), ["a q1 r0 ids[3]"]);
  table.remove("i/#", "a");
  assert.deepEqual(route("i/x"), ["a q1 r0 ids[]"]);
});

Deno.test("route cache: a change touches only the topics its filter matches, $ topics by the $ rule [MQTT-4.7.2-1]", () => {
  const { table, route } = setup(["a", "b"]);
  table.add("$SYS/x", "b", sub(0));
  assert.deepEqual(route("$SYS/x"), ["b q0 r0 ids[]"]);
  assert.deepEqual(route("u/x"), []);
  table.add("#", "a", sub(1));
  table.add("+/x", "a", sub(2));
  assert.deepEqual(route("$SYS/x"), ["b q0 r0 ids[]"]);
  assert.deepEqual(route("u/x"), ["a q2 r0 ids[]"]);
  table.add("$SYS/#", "a", sub(1));
  assert.deepEqual(route("$SYS/x"), ["a q1 r0 ids[]", "b q0 r0 ids[]"]);
  table.remove("#", "a");
  table.remove("+/x", "a");
  assert.deepEqual(route("u/x"), []);
  assert.deepEqual(route("$SYS/x"), ["a q1 r0 ids[]", "b q0 r0 ids[]"]);
});

Deno.test("route cache: a session with many filters gets its changed routes recomputed, not patched", () => {
  const { table, route } = setup(["a", "b"]);
  for (let i = 0; i < 100; i++) table.add(`many/${i}`, "a", sub(0));
  table.add("many/+", "b", sub(1));
  assert.deepEqual(route("many/5"), ["a q0 r0 ids[]", "b q1 r0 ids[]"]);
  table.add("many/#", "a", sub(2, { subscriptionId: 4 }));
  assert.deepEqual(route("many/5"), ["a q2 r0 ids[4]", "b q1 r0 ids[]"]);
  table.remove("many/#", "a");
  table.remove("many/5", "a");
  assert.deepEqual(route("many/5"), ["b q1 r0 ids[]"]);
});

Deno.test("route cache: a change matching more cached routes than it may mark clears the cache, still exact", () => {
  const { table, route } = setup(["a", "b"]);
  table.add("big/#", "a", sub(1));
  // More than MAX_MARKS cached routes under big/.
  const topics = Array.from({ length: 4_200 }, (_, i) => `big/${i}`);
  for (const t of topics) assert.deepEqual(route(t), ["a q1 r0 ids[]"]);
  table.add("big/+", "b", sub(2, { subscriptionId: 1 }));
  for (const t of topics) assert.deepEqual(route(t), ["a q1 r0 ids[]", "b q2 r0 ids[1]"]);
  table.remove("big/+", "b");
  table.remove("big/#", "a");
  for (const t of topics.slice(0, 5)) assert.deepEqual(route(t), []);
});

Deno.test("route cache: many sessions changing one cached route between two messages", () => {
  const clients = Array.from({ length: 150 }, (_, i) => `s${i}`);
  const { table, route } = setup(clients);
  table.add("p/x", "s0", sub(0));
  assert.deepEqual(route("p/x"), ["s0 q0 r0 ids[]"]);
  // More than MAX_PENDING sessions marked on one route: recomputed, then cached again.
  for (const c of clients) table.add("p/#", c, sub(1));
  const all = clients.map((c) => `${c} q1 r0 ids[]`).sort();
  assert.deepEqual(route("p/x"), all);
  for (const c of clients.slice(0, 10)) table.remove("p/#", c);
  table.add("p/+", "s3", sub(2, { noLocal: true }));
  const expected = [
    "s0 q0 r0 ids[]",
    "s3 q2 r0 ids[]",
    ...clients.slice(10).map((c) => `${c} q1 r0 ids[]`),
  ].sort();
  assert.deepEqual(route("p/x"), expected);
  assert.deepEqual(
    route("p/x", "s3"),
    expected.filter((x) => !x.startsWith("s3 ")),
  );
});

/** A small deterministic generator (mulberry32), so that a failure can be replayed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296 * n) | 0;
  };
}

const TOPICS = ["a", "a/b", "a/b/c", "a/c", "b/b", "$s/a", "$s/b/c", "a//c", "/a"];
const FILTERS = [
  "a",
  "a/b",
  "a/+",
  "a/#",
  "+/b",
  "+/+/c",
  "#",
  "+",
  "$s/#",
  "$s/+/c",
  "a/+/c",
  "+/#",
  "/+",
  "a/b/c/#",
];

Deno.test("route cache: random SUBSCRIBE/UNSUBSCRIBE churn always routes as an uncached router does", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const r = rng(seed);
    const clients = ["c0", "c1", "c2", "c3"];
    const table = new SubscriptionTable(undefined);
    const cached = recorder();
    const router = new Router(table, sessions(clients), cached.delivery);
    for (let step = 0; step < 400; step++) {
      const owner = clients[r(clients.length)];
      const filter = FILTERS[r(FILTERS.length)];
      if (r(3) === 0) table.remove(filter, owner);
      else {
        table.add(
          filter,
          owner,
          sub(r(3) as QoS, {
            noLocal: r(3) === 0,
            retainAsPublished: r(2) === 0,
            subscriptionId: r(3),
          }),
        );
      }
      // Route a few topics after each change, each through the cached router and through one
      // made fresh from the table (no cache).
      for (let k = 0; k < 3; k++) {
        const topic = TOPICS[r(TOPICS.length)];
        const origin = r(2) === 0 ? clients[r(clients.length)] : "publisher";
        const qos = r(3) as QoS;
        const fresh = recorder();
        const msg = message(topic, qos, origin);
        // Over a copy of the table: a router on the table itself would stay its observer.
        const copy = new SubscriptionTable(undefined);
        table.tree.forEach((f, o, v) => copy.add(f, o, v));
        new Router(copy, sessions(clients), fresh.delivery).route(msg);
        cached.sent.length = 0;
        router.route(msg);
        assert.deepEqual(
          cached.sent.slice().sort(),
          fresh.sent.slice().sort(),
          `seed ${seed} step ${step}: ${owner} ${filter}, then ${topic} from ${origin}`,
        );
      }
    }
  }
});

Deno.test("topic index finds by filter exactly the topics the topic tree and topicMatches match", () => {
  const topics = [...TOPICS, "$SYS", "$SYS/x", "x", "x/", "", "a/b/c/d"];
  const filters = [...FILTERS, "a/b/", "x/#", "+/+", "$SYS/#", "$SYS", "/#"];
  const index = new TopicIndex();
  for (const t of topics) index.add(t);
  assert.equal(index.size, topics.length);
  for (const f of filters) {
    const viaIndex: string[] = [];
    index.match(f, (t) => viaIndex.push(t) > 0);
    const tree = new TopicTree<true>();
    tree.add(f, "o", true);
    const viaTree = topics.filter((t) => {
      let hit = false;
      tree.match(t, () => hit = true);
      return hit;
    });
    assert.deepEqual(viaIndex.sort(), viaTree.slice().sort(), `filter ${f} (index vs tree)`);
    assert.deepEqual(
      topics.filter((t) => topicMatches(f, t)).sort(),
      viaTree.sort(),
      `filter ${f} (topicMatches vs tree)`,
    );
  }
});

Deno.test("route cache over the wire: re-SUBSCRIBE, UNSUBSCRIBE and a session's end change the next PUBLISH's deliveries [MQTT-3.8.4-3] [MQTT-3.3.4-3]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "sub");
    const pub = await connected(b, "pub");
    await subscribe5(c, [{ topic: "w/+", qos: 0 }], 1);
    await publishAcked(pub, "w/x", "1", 2);
    const first = await c.next("publish");
    assert.deepEqual([first.qos, first.properties?.subscriptionIdentifiers], [0, [1]]);
    // Same filter again, another QoS and identifier: replaces the subscription (MQTT-3.8.4-3).
    await subscribe5(c, [{ topic: "w/+", qos: 1 }], 2, 2);
    await publishAcked(pub, "w/x", "2", 2);
    const second = await c.next("publish");
    assert.deepEqual([second.qos, second.properties?.subscriptionIdentifiers], [1, [2]]);
    await c.send({ type: "puback", packetId: second.packetId! });
    // An overlapping filter with No Local: own messages come through "w/+" only.
    await subscribe5(c, [{ topic: "w/#", qos: 2, noLocal: true }], 3, 3);
    await c.send(publish("w/x", "own", 1, { packetId: 9 }));
    await c.next("puback");
    const own = await c.next("publish");
    assert.deepEqual([text(own), own.qos, own.properties?.subscriptionIdentifiers], [
      "own",
      1,
      [2],
    ]);
    await c.send({ type: "puback", packetId: own.packetId! });
    await unsubscribe(c, ["w/+"], 4);
    await c.send(publish("w/x", "own again", 1, { packetId: 10 }));
    await c.next("puback");
    await assertNone(c, "publish");
    // A second subscriber's session ends: it is not routed to any more (and nothing throws).
    const other = await connected(b, "other");
    await subscribe(other, [["w/x", 1]]);
    await publishAcked(pub, "w/x", "3", 1);
    assert.equal(text(await other.next("publish")), "3");
    const third = await c.next("publish");
    assert.deepEqual([text(third), third.qos, third.properties?.subscriptionIdentifiers], [
      "3",
      1,
      [3],
    ]);
    await c.send({ type: "puback", packetId: third.packetId! });
    await drop(other);
    await publishAcked(pub, "w/x", "4", 1);
    const last = await c.next("publish");
    assert.deepEqual([text(last), last.qos, last.properties?.subscriptionIdentifiers], [
      "4",
      1,
      [3],
    ]);
    c.close();
    pub.close();
  });
});
