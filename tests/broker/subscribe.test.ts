/** SUBSCRIBE / SUBACK: return codes, filters, overlaps and retained messages. */
import assert from "node:assert/strict";
import {
  assertNone,
  connected,
  publish,
  publishAcked,
  quietWindow,
  subscribe,
  text,
  waitFor,
  withBroker,
} from "./harness.ts";
import type { PublishPacket } from "../../src/codec/packets.ts";

Deno.test("SUBACK returns the granted QoS per filter, in order, with the SUBSCRIBE's packet id [MQTT-3.8.4-5]", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "codes");
    await c.send({
      type: "subscribe",
      packetId: 321,
      subscriptions: [{ topic: "a/2", qos: 2 }, { topic: "a/0", qos: 0 }, { topic: "a/1", qos: 1 }],
    });
    const ack = await c.next("suback");
    assert.equal(ack.packetId, 321, "[MQTT-3.8.4-2]");
    assert.deepEqual(ack.reasonCodes, [2, 0, 1]);
    assert.equal(b.stats.subscriptions, 3);
    c.close();
  });
});

Deno.test("invalid topic filters get SUBACK 0x80 while valid ones in the same SUBSCRIBE are granted [MQTT-4.7.1-2] [MQTT-4.7.1-3]", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "bad");
    const filters: [string, 0 | 1 | 2][] = [
      ["a/#/b", 1], // '#' not last
      ["ok/+", 1],
      ["a+", 0], // '+' not a whole level
      ["#a", 0],
      ["a/b#", 0],
      ["", 1], // empty filter [MQTT-4.7.3-1]
      ["a/+b/c", 2],
      ["ok/#", 2],
    ];
    const codes = await subscribe(c, filters);
    assert.deepEqual(codes, [0x80, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 2]);
    // The valid ones work.
    await c.send(publish("ok/x", "yes"));
    assert.equal(text(await c.next("publish")), "yes");
    c.close();
  });
});

Deno.test("a refused filter does not leave a subscription behind", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "none");
    assert.deepEqual(await subscribe(c, [["x/#/y", 0]]), [0x80]);
    assert.equal(b.stats.subscriptions, 0);
    c.close();
  });
});

Deno.test("wildcards match per MQTT: '+' one level, '#' any levels and the parent [MQTT-4.7.1-2]", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "wild");
    await subscribe(c, [["sport/+/player1", 0], ["fin/#", 0]]);
    const pub = await connected(b, "pub");
    const topics = [
      "sport/tennis/player1", // yes
      "sport/tennis/player2", // no
      "sport/tennis/x/player1", // no
      "fin", // yes: '#' includes the parent level
      "fin/a/b/c", // yes
      "final", // no
    ];
    for (const t of topics) await pub.send(publish(t, t));
    await pub.send(publish("fin/end", "end"));
    const got: string[] = [];
    while (true) {
      const m = await c.next("publish");
      if (text(m) === "end") break;
      got.push(m.topic);
    }
    assert.deepEqual(got, ["sport/tennis/player1", "fin", "fin/a/b/c"]);
    c.close();
    pub.close();
  });
});

// Clients may not write to $SYS (the broker's own tree), so another '$' topic stands in for it.
Deno.test("'#' and '+/…' do not match topics starting with '$'; '$app/#' does [MQTT-4.7.2-1]", async () => {
  await withBroker(async (b) => {
    const all = await connected(b, "all");
    await subscribe(all, [["#", 0], ["+/x", 0]]);
    const sys = await connected(b, "sys");
    await subscribe(sys, [["$app/#", 0]]);
    const pub = await connected(b, "pub");
    await pub.send(publish("$app/x", "dollar"));
    assert.equal(text(await sys.next("publish")), "dollar");
    // Absence tested.
    await assertNone(all, "publish");
    for (const c of [all, sys, pub]) c.close();
  });
});

Deno.test("overlapping subscriptions deliver one copy at the highest granted QoS [MQTT-3.3.5-1]", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "ov");
    assert.deepEqual(await subscribe(c, [["ov/+", 0], ["ov/#", 1], ["ov/x", 0]]), [0, 1, 0]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "ov/x", "m", 2);
    const m = await c.next("publish");
    assert.equal(m.qos, 1);
    await c.send({ type: "puback", packetId: m.packetId! });
    // Absence tested: no second copy.
    await assertNone(c, "publish");
    c.close();
    pub.close();
  });
});

Deno.test("messages published after the SUBACK are delivered", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "after");
    const pub = await connected(b, "pub");
    await publishAcked(pub, "after/t", "before", 1);
    await subscribe(c, [["after/t", 0]]);
    await pub.send(publish("after/t", "after"));
    assert.equal(text(await c.next("publish")), "after");
    assert.deepEqual(c.pending("publish"), [], "the one sent before the SUBSCRIBE is not there");
    c.close();
    pub.close();
  });
});

Deno.test("retained messages are sent after the SUBACK with RETAIN 1 [MQTT-3.3.1-6] [MQTT-3.3.1-8]", async () => {
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await publishAcked(pub, "ret/a", "A", 1, { retain: true });
    await publishAcked(pub, "ret/b", "B", 0, { retain: true });
    await publishAcked(pub, "ret/c", "C", 0); // not retained
    const c = await connected(b, "late");
    await c.send({ type: "subscribe", packetId: 4, subscriptions: [{ topic: "ret/+", qos: 1 }] });
    await waitFor(() => c.received.length >= 3, 2000, "SUBACK and two retained messages");
    // In wire order: the SUBACK first.
    assert.deepEqual(c.received.map((p) => p.type), ["suback", "publish", "publish"]);
    const pubs = c.received.slice(1) as PublishPacket[];
    assert.deepEqual(pubs.map((m) => [m.topic, text(m), m.retain]).sort(), [
      ["ret/a", "A", true],
      ["ret/b", "B", true],
    ]);
    // Absence tested: the non-retained message is not replayed.
    await quietWindow(50);
    assert.equal(c.received.length, 3);
    c.close();
    pub.close();
  });
});

Deno.test("replacing a subscription keeps one subscription, applies the new QoS and re-sends retained [MQTT-3.8.4-3]", async () => {
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await publishAcked(pub, "rep/t", "kept", 2, { retain: true });
    const c = await connected(b, "rep");
    assert.deepEqual(await subscribe(c, [["rep/t", 2]], 1), [2]);
    const r1 = await c.next("publish");
    assert.equal(r1.qos, 2);
    assert.equal(r1.retain, true);
    await c.send({ type: "pubrec", packetId: r1.packetId! });
    await c.next("pubrel");
    await c.send({ type: "pubcomp", packetId: r1.packetId! });
    assert.deepEqual(await subscribe(c, [["rep/t", 0]], 2), [0]);
    const r2 = await c.next("publish");
    assert.equal(r2.retain, true, "retained message re-sent");
    assert.equal(r2.qos, 0, "at the new QoS");
    assert.equal(b.stats.subscriptions, 1);
    await pub.send(publish("rep/t", "live", 2, { packetId: 3 }));
    const live = await c.next("publish");
    assert.equal(live.qos, 0, "the replacing QoS applies to new messages");
    assert.equal(live.retain, false);
    // Absence tested: one subscription, one copy.
    await assertNone(c, "publish");
    c.close();
    pub.close();
  });
});

Deno.test("a retained message is sent at min(message QoS, granted QoS)", async () => {
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await publishAcked(pub, "rq/two", "2", 2, { retain: true });
    await publishAcked(pub, "rq/zero", "0", 0, { retain: true });
    const c = await connected(b, "rq");
    await subscribe(c, [["rq/two", 1]], 1);
    const m = await c.next("publish");
    assert.equal(m.qos, 1);
    await c.send({ type: "puback", packetId: m.packetId! });
    await subscribe(c, [["rq/zero", 2]], 2);
    const z = await c.next("publish");
    assert.equal(z.qos, 0, "never upgraded");
    assert.equal(z.packetId, undefined);
    c.close();
    pub.close();
  });
});

Deno.test("a SUBSCRIBE fires the subscribed event per granted filter, not for refused ones", async () => {
  const seen: [string, string, number][] = [];
  await withBroker(async (b) => {
    const c = await connected(b, "ev");
    await subscribe(c, [["ev/a", 1], ["ev/#/bad", 0], ["ev/b", 2]]);
    assert.deepEqual(seen, [["ev", "ev/a", 1], ["ev", "ev/b", 2]]);
    c.close();
  }, { events: { subscribed: (info, filter, qos) => seen.push([info.clientId, filter, qos]) } });
});
