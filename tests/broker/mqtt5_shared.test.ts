/**
 * Shared subscriptions on one node (MQTT 5.0 4.8.2), for 5.0 and 3.1.1 clients: one receiver per
 * group and message, the strategies, `$queue/`, invalid share names, No Local, no retained
 * messages, redelivery when a member leaves, and a restart.
 */
import assert from "node:assert/strict";
import type { Broker } from "../../src/broker/broker.ts";
import { Core } from "../../src/broker/core.ts";
import { defaultBrokerOptions } from "../../src/broker/options.ts";
import { silentLogger } from "../../src/log.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import type { SharedStrategy } from "../../src/broker/shared_groups.ts";
import type { PublishPacket, QoS } from "../../src/codec/packets.ts";
import { ReasonCode } from "../../src/codec/reason_codes.ts";
import {
  assertNone,
  connected,
  disconnect,
  drop,
  makeBroker,
  MemoryClient,
  publish,
  publishAcked,
  sqliteStore,
  subscribe,
  text,
  unsubscribe,
  waitFor,
  withBroker,
  withTempDir,
} from "./harness.ts";
import { connected5, expectDisconnect, hex } from "./mqtt5_harness.ts";

/** Publishes `n` messages "0".."n-1" on `topic` at `qos` from a fresh client. */
async function publishMany(b: Broker, topic: string, n: number, qos: QoS = 1): Promise<void> {
  const pub = await connected(b, `pub-${crypto.randomUUID()}`);
  for (let i = 0; i < n; i++) {
    await publishAcked(pub, topic, String(i), qos, { packetId: (i % 65000) + 1 });
  }
  pub.close();
}

/** Takes every PUBLISH `c` received so far, acknowledging QoS 1 ones; returns the payloads. */
async function drain(c: MemoryClient): Promise<string[]> {
  const out: string[] = [];
  for (const p of c.pending("publish") as PublishPacket[]) {
    await c.next("publish");
    out.push(text(p));
    if (p.qos === 1) await c.send({ type: "puback", packetId: p.packetId! });
  }
  return out;
}

/** Every payload received by `clients` until `n` arrived (acknowledging), per client. */
async function collect(clients: MemoryClient[], n: number): Promise<string[][]> {
  const got: string[][] = clients.map(() => []);
  await waitFor(
    () =>
      clients.reduce((a, c) => a + c.pending("publish").length, 0) +
          got.reduce((a, g) => a + g.length, 0) >= n,
    5000,
    `${n} messages`,
  );
  for (let i = 0; i < clients.length; i++) got[i].push(...await drain(clients[i]));
  return got;
}

function assertExactlyOnce(got: string[][], n: number): void {
  const all = got.flat().map(Number).sort((a, b) => a - b);
  assert.deepEqual(all, Array.from({ length: n }, (_, i) => i), "every message exactly once");
}

function strategy(s: SharedStrategy) {
  return { options: { sharedSubscriptionStrategy: s } };
}

Deno.test("each message goes to one member of the group, round robin; a non-shared subscriber gets its own copy [4.8.2]", async () => {
  await withBroker(async (b) => {
    const a = await connected(b, "a"); // 3.1.1
    const { c: m5 } = await connected5(b, "b"); // 5.0 in the same group
    const plain = await connected(b, "plain");
    assert.deepEqual(await subscribe(a, [["$share/g/rr/+", 1]]), [1]);
    assert.deepEqual(await subscribe(m5, [["$share/g/rr/+", 2]]), [2]);
    assert.deepEqual(await subscribe(plain, [["rr/#", 1]]), [1]);
    assert.equal(b.stats.subscriptions, 3);
    await publishMany(b, "rr/x", 10);
    const [ga, gb, gp] = await collect([a, m5, plain], 20);
    assertExactlyOnce([ga, gb], 10);
    assert.equal(ga.length, 5, "round robin: half each");
    assert.equal(gb.length, 5);
    assert.deepEqual(gp, Array.from({ length: 10 }, (_, i) => String(i)), "plain gets all");
    for (const c of [a, m5, plain]) c.close();
  });
});

Deno.test("two groups on one filter each get every message once; $queue/ is the group $queue", async () => {
  await withBroker(async (b) => {
    const g1 = [await connected(b, "g1a"), await connected(b, "g1b")];
    const g2 = [await connected(b, "g2a")];
    const q = [await connected(b, "qa"), await connected(b, "qb")];
    for (const c of g1) await subscribe(c, [["$share/one/t", 1]]);
    for (const c of g2) await subscribe(c, [["$share/two/t", 1]]);
    for (const c of q) assert.deepEqual(await subscribe(c, [["$queue/t", 1]]), [1]);
    await publishMany(b, "t", 6);
    const got = await collect([...g1, ...g2, ...q], 18);
    assertExactlyOnce(got.slice(0, 2), 6);
    assertExactlyOnce(got.slice(2, 3), 6);
    assertExactlyOnce(got.slice(3, 5), 6);
    for (const c of [...g1, ...g2, ...q]) c.close();
  });
});

Deno.test("invalid share names are refused: 0x8F in 5.0, 0x80 in 3.1.1 [MQTT-4.8.2-1] [MQTT-4.8.2-2]", async () => {
  const bad: [string, QoS][] = [
    ["$share/", 1],
    ["$share/g", 1],
    ["$share//t", 1], // empty share name
    ["$share/g+/t", 1],
    ["$share/g#/t", 1],
    ["$share/g/", 1], // empty filter
    ["$share/g/a/#/b", 1],
    ["$queue/", 1],
  ];
  await withBroker(async (b) => {
    const { c: five } = await connected5(b, "five");
    assert.deepEqual(
      await subscribe(five, [...bad, ["$share/g/ok", 1]]),
      [...bad.map(() => ReasonCode.TopicFilterInvalid), 1],
    );
    const old = await connected(b, "old");
    assert.deepEqual(await subscribe(old, bad), bad.map(() => 0x80));
    assert.equal(b.stats.subscriptions, 1);
    five.close();
    old.close();
  });
});

Deno.test("shared subscriptions switched off: 0x9E in 5.0 and 0x80 in 3.1.1 [3.2.2.3.15] [3.9.3 0x9E]", async () => {
  await withBroker(async (b) => {
    const { c: five } = await connected5(b, "five");
    assert.deepEqual(
      await subscribe(five, [["$share/g/t", 1], ["$queue/t", 1]]),
      [ReasonCode.SharedSubscriptionsNotSupported, ReasonCode.SharedSubscriptionsNotSupported],
    );
    const old = await connected(b, "old");
    assert.deepEqual(await subscribe(old, [["$share/g/t", 1]]), [0x80]);
    five.close();
    old.close();
  }, { options: { sharedSubscriptionAvailable: false } });
});

Deno.test("No Local on a shared subscription is a protocol error: DISCONNECT 0x82 [MQTT-3.8.3-4]", async () => {
  await withBroker(async (b) => {
    // As a packet (the handler's check) ...
    const { c } = await connected5(b, "nl");
    await c.send({
      type: "subscribe",
      packetId: 1,
      subscriptions: [{ topic: "$share/g/t", qos: 1, noLocal: true }],
    });
    await expectDisconnect(c, ReasonCode.ProtocolError);
    // ... and as raw bytes (the decoder's): SUBSCRIBE id 1, no properties, "$share/g/a", options
    // QoS 0 + No Local (0x04).
    const { c: raw } = await connected5(b, "nl-raw");
    await raw.sendBytes(hex("82 10 0001 00 000a 2473686172652f672f61 04"));
    await expectDisconnect(raw, ReasonCode.ProtocolError);
    assert.equal(b.stats.subscriptions, 0);
  });
});

Deno.test("no retained messages are sent on subscribing to a shared filter (4.8.2, whatever Retain Handling says)", async () => {
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await publishAcked(pub, "kept/1", "retained", 1, { retain: true });
    const s = await connected(b, "s");
    assert.deepEqual(await subscribe(s, [["$share/g/kept/#", 1]]), [1]);
    await assertNone(s, "publish"); // absence is what is tested
    // A plain subscription to the same filter does get it: the message is there.
    await subscribe(s, [["kept/#", 1]], 2);
    const p = await s.next("publish");
    assert.equal(p.retain, true);
    // Live messages reach the shared subscription with RETAIN 0.
    await publishAcked(pub, "kept/1", "live", 0, { retain: true });
    const live = [await s.next("publish"), await s.next("publish")];
    assert.deepEqual(live.map((x) => x.retain), [false, false]);
    s.close();
    pub.close();
  });
});

Deno.test("a shared subscription is authorized by its filter without the share name: 0x87 (3.9.3)", async () => {
  const authorizer = {
    canPublish: () => true,
    canSubscribe: (_: unknown, filter: string) => !filter.startsWith("secret"),
  };
  await withBroker(async (b) => {
    const { c } = await connected5(b, "auth");
    assert.deepEqual(
      await subscribe(c, [["$share/g/secret/x", 1], ["$share/secret/open", 1]]),
      [ReasonCode.NotAuthorized, 1],
    );
    c.close();
  }, { authorizer });
});

Deno.test("unsubscribing leaves the group: the other member gets everything, the leaver nothing", async () => {
  await withBroker(async (b) => {
    const a = await connected(b, "a");
    const { c: m } = await connected5(b, "m");
    await subscribe(a, [["$share/g/u", 1]]);
    await subscribe(m, [["$share/g/u", 1]]);
    await unsubscribe(a, ["$share/g/u"]);
    await m.send({ type: "unsubscribe", packetId: 3, topics: ["$share/g/u", "$share/h/u"] });
    assert.deepEqual((await m.next("unsuback")).reasonCodes, [0, 0x11], "[MQTT-3.11.3-1]");
    await subscribe(m, [["$share/g/u", 1]], 4);
    await publishMany(b, "u", 4);
    const [ga, gm] = await collect([a, m], 4);
    assert.deepEqual(ga, []);
    assertExactlyOnce([gm], 4);
    assert.equal(b.stats.subscriptions, 1);
    a.close();
    m.close();
  });
});

Deno.test("random: every message once, both members get some", async () => {
  await withBroker(async (b) => {
    const a = await connected(b, "a");
    const c = await connected(b, "c");
    await subscribe(a, [["$share/g/r", 0]]);
    await subscribe(c, [["$share/g/r", 0]]);
    await publishMany(b, "r", 200, 0);
    const got = await collect([a, c], 200);
    assertExactlyOnce(got, 200);
    // P(a member gets none of 200) = 2^-199.
    assert.ok(got[0].length > 0 && got[1].length > 0, `${got[0].length}/${got[1].length}`);
    a.close();
    c.close();
  }, strategy("random"));
});

Deno.test("sticky: one member gets everything until it leaves, then another takes over", async () => {
  await withBroker(async (b) => {
    const a = await connected(b, "a");
    const c = await connected(b, "c");
    await subscribe(a, [["$share/g/s", 1]]);
    await subscribe(c, [["$share/g/s", 1]]);
    await publishMany(b, "s", 20);
    const got = await collect([a, c], 20);
    assertExactlyOnce(got, 20);
    assert.ok(got[0].length === 20 || got[1].length === 20, "one member got all");
    const [stay, leave] = got[0].length === 20 ? [c, a] : [a, c];
    await disconnect(leave);
    await publishMany(b, "s", 5);
    assertExactlyOnce(await collect([stay], 5), 5);
    stay.close();
  }, strategy("sticky"));
});

Deno.test("least_inflight: a member that does not acknowledge gets fewer messages", async () => {
  await withBroker(async (b) => {
    const slow = await connected(b, "slow");
    const fast = await connected(b, "fast");
    await subscribe(slow, [["$share/g/l", 1]]);
    await subscribe(fast, [["$share/g/l", 1]]);
    const pub = await connected(b, "pub");
    let fastGot = 0;
    for (let i = 0; i < 20; i++) {
      await publishAcked(pub, "l", String(i), 1, { packetId: i + 1 });
      await waitFor(() =>
        slow.pending("publish").length + fastGot + fast.pending("publish").length === i + 1
      );
      // fast acknowledges at once, slow never: fast always has less in flight afterwards.
      fastGot += (await drain(fast)).length;
    }
    assert.equal(slow.pending("publish").length, 1, "slow got only the first");
    assert.equal(fastGot, 19);
    for (const c of [slow, fast, pub]) c.close();
  }, strategy("least_inflight"));
});

Deno.test("a member that disconnects with unacknowledged QoS 1 messages has them redelivered to another member [4.8.2]", async () => {
  await withBroker(async (b) => {
    const a = await connected(b, "a");
    const c = await connected(b, "c", { clean: false });
    await subscribe(a, [["$share/g/q1", 1]]);
    await subscribe(c, [["$share/g/q1", 1]]);
    await publishMany(b, "q1", 6);
    await waitFor(() => a.pending("publish").length + c.pending("publish").length === 6);
    const held = (c.pending("publish") as PublishPacket[]).map(text);
    assert.equal(held.length, 3);
    // c (persistent) leaves without acknowledging: its messages go to a, which is connected.
    await drop(c);
    const got = await collect([a], 6);
    assertExactlyOnce(got, 6);
    // c's session, resumed, does not get them again.
    const back = new MemoryClient(b);
    assert.equal((await back.connect("c", false)).sessionPresent, true);
    await assertNone(back, "publish"); // absence is what is tested
    back.close();
    a.close();
  });
});

Deno.test("QoS 2 in flight stays with its member and is completed on reconnect, never sent to another member [MQTT-4.8.2-4] [MQTT-4.8.2-5]", async () => {
  await withBroker(async (b) => {
    const a = await connected(b, "a");
    const c = await connected(b, "c", { clean: false });
    await subscribe(c, [["$share/g/q2", 2]]);
    await publishMany(b, "q2", 1, 2);
    const first = await c.next("publish");
    await subscribe(a, [["$share/g/q2", 2]]);
    await drop(c);
    await assertNone(a, "publish"); // absence is what is tested: not redelivered to a
    const back = new MemoryClient(b);
    await back.connect("c", false);
    const again = await back.next("publish");
    assert.equal(text(again), text(first));
    assert.equal(again.dup, true);
    back.close();

    // A clean member's session ends with its connection: its QoS 2 in flight goes to nobody.
    const clean = await connected(b, "clean");
    await unsubscribe(a, ["$share/g/q2"]);
    await subscribe(clean, [["$share/g/q2", 2]]);
    await publishMany(b, "q2", 1, 2);
    await clean.next("publish");
    await subscribe(a, [["$share/g/q2", 2]]);
    await drop(clean);
    await assertNone(a, "publish"); // absence is what is tested
    a.close();
  });
});

Deno.test("while every member is offline the message is queued in one persistent member's session", async () => {
  await withBroker(async (b) => {
    const a = await connected(b, "a", { clean: false });
    const c = await connected(b, "c", { clean: false });
    await subscribe(a, [["$share/g/off", 1]]);
    await subscribe(c, [["$share/g/off", 1]]);
    await disconnect(a);
    // Only c is connected: it gets all.
    await publishMany(b, "off", 3);
    assertExactlyOnce(await collect([c], 3), 3);
    await disconnect(c);
    await publishMany(b, "off", 4);
    const ra = new MemoryClient(b);
    await ra.connect("a", false);
    const rc = new MemoryClient(b);
    await rc.connect("c", false);
    assertExactlyOnce(await collect([ra, rc], 4), 4);
    ra.close();
    rc.close();
  });
});

Deno.test("shared subscriptions survive a restart (SqliteStore); resumed members rejoin their group", async () => {
  await withTempDir(async (dir) => {
    const b1 = makeBroker({ store: sqliteStore(dir), options: { durable: true } });
    await b1.start();
    const a = await connected(b1, "a", { clean: false });
    const { c } = await connected5(b1, "c", { sessionExpiryInterval: 600 }, { clean: false });
    await subscribe(a, [["$share/g/dur/+", 1]]);
    await subscribe(c, [["$share/g/dur/+", 1]]);
    await disconnect(a);
    await c.send({ type: "disconnect" });
    await c.waitClosed();
    await publishMany(b1, "dur/x", 2); // queued while both are offline
    await b1.close();

    const b2 = makeBroker({ store: sqliteStore(dir), options: { durable: true } });
    await b2.start();
    try {
      assert.equal(b2.stats.subscriptions, 2);
      const ra = new MemoryClient(b2);
      assert.equal((await ra.connect("a", false)).sessionPresent, true);
      const { c: rc } = await connected5(b2, "c", { sessionExpiryInterval: 600 }, {
        clean: false,
      });
      const before = await collect([ra, rc], 2);
      assertExactlyOnce(before, 2);
      await publishMany(b2, "dur/y", 10);
      const after = await collect([ra, rc], 10);
      assertExactlyOnce(after, 10);
      assert.deepEqual(after.map((g) => g.length), [5, 5], "both members are in the group");
      ra.close();
      rc.close();
    } finally {
      await b2.close();
    }
  });
});

Deno.test("a message published by a member reaches the group like any other (No Local does not apply)", async () => {
  await withBroker(async (b) => {
    const a = await connected(b, "a");
    await subscribe(a, [["$share/g/self", 0]]);
    await a.send(publish("self", "mine"));
    assert.equal(text(await a.next("publish")), "mine");
    a.close();
  });
});

Deno.test("a node picked for a group that has no member there any more passes the message on once, then drops it", () => {
  const sent: [string, string, number][] = [];
  const link = {
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    routeAdded: () => {},
    routeRemoved: () => {},
    forward: () => {},
    acquireSession: () => Promise.resolve(),
    retainedChanged: () => {},
    forwardShared: (_m: unknown, node: string, share: string, hops: number) => {
      sent.push([node, share, hops]);
    },
  };
  const core = new Core({
    options: defaultBrokerOptions,
    store: new MemoryStore(),
    log: silentLogger,
    cluster: link,
  });
  core.subscriptions.shared.remoteChanged("$share/g/t", "n2", true);
  const msg = core.messages.create("t", new Uint8Array(0), 1, false, "x");
  core.shared.fromPeer(msg, "$share/g/t", 0);
  assert.deepEqual(sent, [["n2", "$share/g/t", 1]], "passed on to the node with members");
  core.shared.fromPeer(msg, "$share/g/t", 1);
  assert.equal(sent.length, 1, "not passed on a second time");
  // A message that enters here goes to the other node's members, marked with no hop yet.
  core.publisher.publish(core.messages.create("t", new Uint8Array(0), 1, false, "y"));
  assert.deepEqual(sent[1], ["n2", "$share/g/t", 0]);
  // That node's last member left: the group is gone here too.
  core.subscriptions.shared.remoteChanged("$share/g/t", "n2", false);
  assert.equal(core.subscriptions.shared.active, false);
});
