/**
 * Shared subscriptions with the MQTT 5.0 subscription options: a member's Subscription Identifier
 * and Retain As Published apply to what it receives through its group, the ACL rule for filters
 * that partly overlap a denied topic applies to members, a group counts as a matching subscriber
 * for 0x10, and No Local on `$queue/` is refused like on `$share/`.
 */
import assert from "node:assert/strict";
import type { ClientInfo } from "../../src/broker/model.ts";
import type { PublishPacket } from "../../src/codec/packets.ts";
import { ReasonCode } from "../../src/codec/reason_codes.ts";
import {
  assertNone,
  connected,
  publish,
  publishAcked,
  subscribe,
  text,
  waitFor,
  withBroker,
} from "./harness.ts";
import type { MemoryClient } from "./memory_pipe.ts";
import { connected5, expectDisconnect, subscribe5 } from "./mqtt5_harness.ts";

/** Takes the PUBLISHes `c` received so far, acknowledging QoS 1 ones. */
async function take(c: MemoryClient): Promise<PublishPacket[]> {
  const out: PublishPacket[] = [];
  for (let n = c.pending("publish").length; n > 0; n--) {
    const p = await c.next("publish");
    out.push(p);
    if (p.qos === 1) await c.send({ type: "puback", packetId: p.packetId! });
  }
  return out;
}

Deno.test("a shared member's Subscription Identifier comes with every message it receives through the group, apart from its plain subscription's [MQTT-3.3.4-3]", async () => {
  await withBroker(async (b) => {
    const { c: a } = await connected5(b, "a");
    const { c: m } = await connected5(b, "m");
    const old = await connected(b, "old"); // 3.1.1 member: no identifiers, no properties
    assert.deepEqual(await subscribe5(a, [{ topic: "$share/g/t/+", qos: 1 }], 5), [1]);
    assert.deepEqual(await subscribe5(m, [{ topic: "$share/g/t/+", qos: 1 }], 6), [1]);
    assert.deepEqual(await subscribe(old, [["$share/g/t/+", 1]]), [1]);
    // A's own plain subscription: its copy carries its own identifier, not the group's.
    assert.deepEqual(await subscribe5(a, [{ topic: "t/#", qos: 1 }], 9, 2), [1]);
    const pub = await connected(b, "pub");
    const n = 9;
    for (let i = 0; i < n; i++) {
      await publishAcked(pub, `t/${i}`, String(i), 1, { packetId: i + 1 });
    }
    await waitFor(
      () =>
        a.pending("publish").length + m.pending("publish").length +
            old.pending("publish").length >= 2 * n,
      5000,
      "every group copy and every plain copy",
    );
    const gotA = await take(a);
    const gotM = await take(m);
    const gotOld = await take(old);
    const plain = gotA.filter((p) => p.properties?.subscriptionIdentifiers?.[0] === 9);
    const viaGroupA = gotA.filter((p) => p.properties?.subscriptionIdentifiers?.[0] !== 9);
    assert.equal(plain.length, n, "the plain subscription sees every message");
    for (const p of plain) assert.deepEqual(p.properties?.subscriptionIdentifiers, [9]);
    for (const p of viaGroupA) assert.deepEqual(p.properties?.subscriptionIdentifiers, [5]);
    for (const p of gotM) assert.deepEqual(p.properties?.subscriptionIdentifiers, [6]);
    for (const p of gotOld) assert.equal(p.properties, undefined, "3.1.1 has no properties");
    assert.ok(viaGroupA.length > 0 && gotM.length > 0 && gotOld.length > 0, "round robin");
    const group = [...viaGroupA, ...gotM, ...gotOld].map((p) => Number(text(p)));
    assert.deepEqual(group.sort((x, y) => x - y), [...Array(n).keys()], "one member each [4.8.2]");
    for (const c of [a, m, old, pub]) c.close();
  });
});

Deno.test("a QoS 1 message moved to another member when its member leaves carries the new member's identifier [MQTT-3.3.4-3] [4.8.2]", async () => {
  await withBroker(async (b) => {
    const { c: leaver } = await connected5(b, "leaver");
    await subscribe5(leaver, [{ topic: "$share/g/moved", qos: 1 }], 21);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "moved", "x", 1);
    const first = await leaver.next("publish");
    assert.deepEqual(first.properties?.subscriptionIdentifiers, [21]);
    const { c: stays } = await connected5(b, "stays");
    await subscribe5(stays, [{ topic: "$share/g/moved", qos: 1 }], 22);
    leaver.close(); // without acknowledging
    const again = await stays.next("publish");
    assert.equal(text(again), "x");
    assert.deepEqual(again.properties?.subscriptionIdentifiers, [22]);
    for (const c of [stays, pub]) c.close();
  });
});

Deno.test("Retain As Published on a shared subscription keeps RETAIN on live deliveries; without it RETAIN is 0 [MQTT-3.3.1-12] [MQTT-3.3.1-13]", async () => {
  await withBroker(async (b) => {
    const { c: keep } = await connected5(b, "keep");
    await subscribe5(keep, [{ topic: "$share/k/r", qos: 0, retainAsPublished: true }]);
    const { c: clear } = await connected5(b, "clear");
    await subscribe5(clear, [{ topic: "$share/c/r", qos: 0 }]);
    const pub = await connected(b, "pub");
    await pub.send(publish("r", "x", 0, { retain: true }));
    await pub.send(publish("r", "y", 0));
    assert.deepEqual([(await keep.next("publish")).retain, (await keep.next("publish")).retain], [
      true,
      false,
    ]);
    assert.equal((await clear.next("publish")).retain, false);
    for (const c of [keep, clear, pub]) c.close();
  });
});

Deno.test("a member whose filter partly overlaps a denied topic gets none of its messages; the ACL sees the filter without $share/{group}/ (mosquitto rule, 4.8.2)", async () => {
  const asked: string[] = [];
  // "limited" may read s/# except s/secret; everyone else everything.
  const denied = (c: ClientInfo, topic: string) => c.clientId === "limited" && topic === "s/secret";
  const authorizer = {
    canPublish: () => true,
    canSubscribe: (c: ClientInfo, filter: string) => !denied(c, filter),
    checkEachDelivery: (c: ClientInfo, filter: string) => {
      asked.push(filter);
      return c.clientId === "limited" && (filter === "s/#" || filter === "s/+");
    },
  };
  await withBroker(async (b) => {
    const { c: limited } = await connected5(b, "limited");
    const other = await connected(b, "other");
    assert.deepEqual(await subscribe5(limited, [{ topic: "$share/g/s/#", qos: 1 }]), [1]);
    assert.deepEqual(await subscribe(other, [["$share/g/s/#", 1]]), [1]);
    assert.ok(asked.includes("s/#") && !asked.some((f) => f.startsWith("$share")), `${asked}`);
    const pub = await connected(b, "pub");
    for (let i = 0; i < 4; i++) {
      await publishAcked(pub, "s/secret", `secret ${i}`, 1, { packetId: 2 * i + 1 });
      await publishAcked(pub, "s/open", `open ${i}`, 1, { packetId: 2 * i + 2 });
    }
    await waitFor(
      () => limited.pending("publish").length + other.pending("publish").length >= 8,
      5000,
      "all eight messages, each once",
    );
    const toLimited = (await take(limited)).map(text);
    const toOther = (await take(other)).map(text);
    assert.ok(!toLimited.some((t) => t.startsWith("secret")), `limited got ${toLimited}`);
    assert.equal(toOther.filter((t) => t.startsWith("secret")).length, 4, "not lost: the other");
    assert.equal(toLimited.length + toOther.length, 8);
    // With the other member gone, a denied message has no receiver in the group.
    other.close();
    await waitFor(() => b.sessions.get("other") === undefined, 2000, "the clean session ends");
    await publishAcked(pub, "s/secret", "no one", 1, { packetId: 20 });
    await publishAcked(pub, "s/open", "limited", 1, { packetId: 21 });
    const p = await limited.next("publish");
    assert.equal(text(p), "limited", "the denied message was skipped, not queued before it");
    await assertNone(limited, "publish"); // absence is what is tested
    for (const c of [limited, pub]) c.close();
  }, { authorizer });
});

Deno.test("a topic only a shared group subscribes to is acknowledged 0x00, not 0x10 No matching subscribers [3.4.2.1]", async () => {
  await withBroker(async (b) => {
    const member = await connected(b, "member");
    await subscribe(member, [["$queue/only", 1]]);
    const { c: pub } = await connected5(b, "pub5");
    await pub.send(publish("only", "x", 1));
    assert.equal((await pub.next("puback")).reasonCode ?? 0, ReasonCode.Success);
    assert.equal(text(await member.next("publish")), "x");
    await pub.send(publish("nobody", "x", 1, { packetId: 2 }));
    assert.equal((await pub.next("puback")).reasonCode, ReasonCode.NoMatchingSubscribers);
    for (const c of [member, pub]) c.close();
  });
});

Deno.test("No Local on a $queue/ subscription is a protocol error too: DISCONNECT 0x82 [MQTT-3.8.3-4]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "nlq");
    await c.send({
      type: "subscribe",
      packetId: 1,
      subscriptions: [{ topic: "$queue/t", qos: 1, noLocal: true }],
    });
    await expectDisconnect(c, ReasonCode.ProtocolError);
    assert.equal(b.stats.subscriptions, 0);
  });
});
