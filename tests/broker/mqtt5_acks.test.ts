/**
 * MQTT 5.0 acknowledgements with reason codes, both ways: 0x10 No matching subscribers, 0x87 for
 * a refused publish, a subscriber's error PUBREC/PUBACK ending the flow, 0x92 for unknown packet
 * ids; and the authorization of wildcard subscriptions that partly overlap a denied topic.
 */
import assert from "node:assert/strict";
import { AclChecker, parseAcl } from "../../src/auth/acl.ts";
import type { ClusterLink } from "../../src/broker/ports/cluster.ts";
import { ReasonCode } from "../../src/codec/reason_codes.ts";
import {
  assertNone,
  connected,
  publish,
  publishAcked,
  subscribe,
  text,
  withBroker,
} from "./harness.ts";
import { connected5, hex } from "./mqtt5_harness.ts";

const notAuthorized = {
  canPublish: (_c: unknown, t: string) => !t.startsWith("locked/"),
  canSubscribe: () => true,
};

Deno.test("PUBACK / PUBREC 0x10 when nobody subscribes, 0x00 when someone does; 3.1.1 unchanged [3.4.2.1] [3.5.2.1]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "p");
    await c.send(publish("nobody", "x", 1));
    assert.equal((await c.next("puback")).reasonCode, ReasonCode.NoMatchingSubscribers);
    await c.send(publish("nobody", "x", 2, { packetId: 2 }));
    assert.equal((await c.next("pubrec")).reasonCode, ReasonCode.NoMatchingSubscribers);
    // 0x10 is a success: the QoS 2 flow goes on (MQTT-4.3.3-4).
    await c.send({ type: "pubrel", packetId: 2 });
    assert.equal((await c.next("pubcomp")).reasonCode ?? 0, 0);
    const sub = await connected(b, "sub");
    await subscribe(sub, [["some/+", 0]]);
    await c.send(publish("some/one", "x", 1, { packetId: 3 }));
    assert.equal((await c.next("puback")).reasonCode ?? 0, 0);
    const old = await connected(b, "old");
    await old.send(publish("nobody", "x", 1));
    assert.equal((await old.next("puback")).reasonCode, undefined);
    for (const x of [c, sub, old]) x.close();
  });
});

Deno.test("0x10 is never said when the cluster cannot rule out a subscriber on another node [3.4.2.1]", async () => {
  let answer: boolean | undefined = true;
  const cluster: ClusterLink = {
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    routeAdded: () => {},
    routeRemoved: () => {},
    forward: () => {},
    acquireSession: () => Promise.resolve(),
    retainedChanged: () => {},
    routedElsewhere: () => answer,
  };
  await withBroker(async (b) => {
    const { c } = await connected5(b, "p");
    const ackCode = async (pid: number) => {
      await c.send(publish("t", "x", 1, { packetId: pid }));
      return (await c.next("puback")).reasonCode ?? 0;
    };
    assert.equal(await ackCode(1), 0, "another node routes it");
    answer = undefined;
    assert.equal(await ackCode(2), 0, "the link cannot tell");
    answer = false;
    assert.equal(await ackCode(3), ReasonCode.NoMatchingSubscribers, "no node routes it");
    c.close();
  }, { cluster });
});

Deno.test("a refused 5.0 PUBLISH gets PUBACK / PUBREC 0x87 with a reason string; the QoS 2 flow ends there [3.4.2.1] [MQTT-4.3.3-4]", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["locked/#", 1]]);
    const { c } = await connected5(b, "p", { receiveMaximum: 2 });
    await c.send(publish("locked/a", "x", 1));
    const a = await c.next("puback");
    assert.equal(a.reasonCode, ReasonCode.NotAuthorized);
    assert.equal(typeof a.properties?.reasonString, "string");
    // More refused QoS 2 PUBLISHes than our Receive Maximum: each flow ended at its PUBREC,
    // so none holds a slot (else DISCONNECT 0x93).
    for (let pid = 1; pid <= 5; pid++) {
      await c.send(publish("locked/b", "x", 2, { packetId: pid }));
      assert.equal((await c.next("pubrec")).reasonCode, ReasonCode.NotAuthorized);
    }
    await publishAcked(c, "open", "still connected", 1, { packetId: 9 });
    await assertNone(sub, "publish");
    c.close();
    sub.close();
  }, { authorizer: notAuthorized, options: { receiveMaximum: 2 } });
});

Deno.test("a refused PUBLISH: no reason string when problem information is off; 3.1.1 gets a plain PUBACK [MQTT-3.1.2-29]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "p", { requestProblemInformation: 0 });
    await c.send(publish("locked/a", "x", 1));
    const a = await c.next("puback");
    assert.equal(a.reasonCode, ReasonCode.NotAuthorized);
    assert.equal(a.properties, undefined);
    const old = await connected(b, "old");
    await old.send(publish("locked/a", "x", 1));
    assert.equal((await old.next("puback")).reasonCode, undefined);
    c.close();
    old.close();
  }, { authorizer: notAuthorized });
});

Deno.test("a subscriber's PUBREC with an error code ends the flow: no PUBREL, the packet id is free [MQTT-4.3.3-4]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "s");
    await subscribe(c, [["q2", 2]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "q2", "first", 2);
    const m = await c.next("publish");
    await c.send({ type: "pubrec", packetId: m.packetId!, reasonCode: 0x80 });
    await publishAcked(pub, "q2", "second", 2, { packetId: 2 });
    const n = await c.next("publish");
    assert.equal(text(n), "second");
    assert.equal(c.pending("pubrel").length, 0, "no PUBREL for the refused delivery");
    assert.equal(b.sessions.get("s")?.inflight.has(m.packetId!), false);
    c.close();
    pub.close();
  }, { options: { maxInflight: 1 } });
});

Deno.test("a subscriber's PUBACK with an error code completes the QoS 1 flow [4.3.2]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "s");
    await subscribe(c, [["q1", 1]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "q1", "first", 1);
    const m = await c.next("publish");
    await c.send({ type: "puback", packetId: m.packetId!, reasonCode: 0x83 });
    await publishAcked(pub, "q1", "second", 1, { packetId: 2 });
    assert.equal(text(await c.next("publish")), "second", "the window of 1 was freed");
    c.close();
    pub.close();
  }, { options: { maxInflight: 1 } });
});

Deno.test("PUBREL for an unknown packet id: PUBCOMP 0x92 in 5.0, plain PUBCOMP in 3.1.1 [3.7.2.1] [MQTT-4.3.3-11]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "p");
    await c.send({ type: "pubrel", packetId: 77 });
    assert.equal((await c.next("pubcomp")).reasonCode, ReasonCode.PacketIdentifierNotFound);
    const old = await connected(b, "old");
    await old.send({ type: "pubrel", packetId: 77 });
    assert.equal((await old.next("pubcomp")).reasonCode, undefined);
    c.close();
    old.close();
  });
});

Deno.test("PUBREC for an unknown packet id: PUBREL 0x92 in 5.0 [3.6.2.1]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "p");
    // Raw: PUBREC id 5, no reason code (Success).
    await c.sendBytes(hex("50 02 0005"));
    assert.equal((await c.next("pubrel")).reasonCode, ReasonCode.PacketIdentifierNotFound);
    c.close();
  });
});

// u may read everything but secret/...; w may write everywhere.
const ACL = "user u\ntopic readwrite #\ntopic deny secret/#\nuser w\ntopic write #\n";

Deno.test("a wildcard across a denied topic is granted and its messages are checked one by one; a filter wholly denied is refused (3.1.1 and 5.0)", async () => {
  await withBroker(async (b) => {
    const { c: five } = await connected5(b, "five", undefined, { username: "u" });
    const old = await connected(b, "old", { extra: { username: "u" } });
    await five.send({
      type: "subscribe",
      packetId: 1,
      subscriptions: [{ topic: "#", qos: 0 }, { topic: "secret/+", qos: 0 }],
    });
    assert.deepEqual((await five.next("suback")).reasonCodes, [0, ReasonCode.NotAuthorized]);
    assert.deepEqual(await subscribe(old, [["#", 0], ["secret/x", 0]]), [0, 0x80]);
    const pub = await connected(b, "pub", { extra: { username: "w" } });
    await pub.send(publish("secret/x", "hidden"));
    await pub.send(publish("public/x", "shown"));
    assert.equal(text(await five.next("publish")), "shown");
    assert.equal(text(await old.next("publish")), "shown");
    // "hidden" was routed before "shown": had it been delivered, it would have come first.
    assert.equal(five.pending("publish").length + old.pending("publish").length, 0);
    for (const c of [five, old, pub]) c.close();
  }, { authorizer: new AclChecker(parseAcl(ACL)) });
});
