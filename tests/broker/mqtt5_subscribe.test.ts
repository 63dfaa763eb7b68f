/**
 * MQTT 5.0 SUBSCRIBE: the options No Local, Retain As Published and Retain Handling, the
 * Subscription Identifier on every delivery it caused, and the SUBACK reason codes per filter.
 */
import assert from "node:assert/strict";
import { ReasonCode } from "../../src/codec/reason_codes.ts";
import {
  assertNone,
  connected,
  drop,
  makeBroker,
  publish,
  publishAcked,
  sqliteStore,
  subscribe,
  text,
  withBroker,
  withTempDir,
} from "./harness.ts";
import { connected5, expectDisconnect, hex, subscribe5 } from "./mqtt5_harness.ts";

Deno.test("No Local: a client's own messages are not sent back to it, others' are [MQTT-3.8.3-3]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "me");
    assert.deepEqual(await subscribe5(c, [{ topic: "chat", qos: 1, noLocal: true }]), [1]);
    await publishAcked(c, "chat", "mine", 1);
    const other = await connected(b, "other");
    await publishAcked(other, "chat", "theirs", 1);
    const m = await c.next("publish");
    assert.equal(text(m), "theirs");
    await c.send({ type: "puback", packetId: m.packetId! });
    // Absence: "mine" would have come before "theirs".
    await assertNone(c, "publish");
    c.close();
    other.close();
  });
});

Deno.test("No Local on one of two matching subscriptions: own messages come through the other, with its identifier only [MQTT-3.8.3-3] [MQTT-3.3.4-4]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "me");
    await subscribe5(c, [{ topic: "a/#", qos: 0, noLocal: true }], 1, 1);
    await subscribe5(c, [{ topic: "a/b", qos: 0 }], 2, 2);
    await c.send(publish("a/b", "own"));
    const own = await c.next("publish");
    assert.deepEqual(own.properties?.subscriptionIdentifiers, [2]);
    const other = await connected(b, "other");
    await other.send(publish("a/b", "theirs"));
    const theirs = await c.next("publish");
    assert.equal(text(theirs), "theirs");
    assert.deepEqual(theirs.properties?.subscriptionIdentifiers, [1, 2]);
    c.close();
    other.close();
  });
});

Deno.test("Retain As Published keeps RETAIN on live deliveries; without it RETAIN is 0 [MQTT-3.3.1-12] [MQTT-3.3.1-13]", async () => {
  await withBroker(async (b) => {
    const { c: keep } = await connected5(b, "keep");
    await subscribe5(keep, [{ topic: "r", qos: 0, retainAsPublished: true }]);
    const { c: clear } = await connected5(b, "clear");
    await subscribe5(clear, [{ topic: "r", qos: 0 }]);
    const old = await connected(b, "old");
    await subscribe(old, [["r", 0]]);
    const pub = await connected(b, "pub");
    await pub.send(publish("r", "x", 0, { retain: true }));
    await pub.send(publish("r", "y", 0));
    assert.deepEqual([(await keep.next("publish")).retain, (await keep.next("publish")).retain], [
      true,
      false,
    ]);
    assert.equal((await clear.next("publish")).retain, false);
    assert.equal((await old.next("publish")).retain, false, "3.1.1 unchanged [MQTT-3.3.1-9]");
    for (const c of [keep, clear, old, pub]) c.close();
  });
});

Deno.test("Retain Handling 0 sends retained messages on every SUBSCRIBE, 1 only for a new subscription, 2 never [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11]", async () => {
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await publishAcked(pub, "r/1", "kept", 1, { retain: true });
    const { c } = await connected5(b, "s");
    const got = async (rh: 0 | 1 | 2, packetId: number): Promise<number> => {
      await subscribe5(c, [{ topic: "r/+", qos: 0, retainHandling: rh }], undefined, packetId);
      // Retained messages are written right behind the SUBACK: whatever came before the
      // PINGRESP is all there is.
      await c.send({ type: "pingreq" });
      await c.next("pingresp");
      const n = c.pending("publish").length;
      while (c.pending("publish").length > 0) await c.next("publish");
      return n;
    };
    assert.equal(await got(1, 1), 1, "RH 1, new subscription");
    assert.equal(await got(1, 2), 0, "RH 1, existing subscription");
    assert.equal(await got(0, 3), 1, "RH 0, existing subscription");
    assert.equal(await got(2, 4), 0, "RH 2");
    c.close();
    pub.close();
  });
});

Deno.test("the Subscription Identifier is sent with each delivery of its subscription, retained ones included [MQTT-3.3.4-3]", async () => {
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await publishAcked(pub, "s/old", "retained", 1, { retain: true });
    const { c } = await connected5(b, "s");
    assert.deepEqual(await subscribe5(c, [{ topic: "s/#", qos: 1 }], 42), [1]);
    const r = await c.next("publish");
    assert.equal(r.retain, true);
    assert.deepEqual(r.properties?.subscriptionIdentifiers, [42]);
    await c.send({ type: "puback", packetId: r.packetId! });
    await publishAcked(pub, "s/new", "live", 1);
    const m = await c.next("publish");
    assert.deepEqual(m.properties?.subscriptionIdentifiers, [42]);
    await c.send({ type: "puback", packetId: m.packetId! });
    // Subscribing again without an identifier removes it (3.8.2.1.2).
    await subscribe5(c, [{ topic: "s/#", qos: 1, retainHandling: 2 }], undefined, 2);
    await publishAcked(pub, "s/new", "plain", 1);
    assert.equal((await c.next("publish")).properties?.subscriptionIdentifiers, undefined);
    c.close();
    pub.close();
  });
});

Deno.test("overlapping subscriptions of one session: one PUBLISH with all their identifiers [MQTT-3.3.4-4] [MQTT-3.3.4-5]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "s");
    await subscribe5(c, [{ topic: "x/+", qos: 1 }], 7, 1);
    await subscribe5(c, [{ topic: "x/#", qos: 0 }], 3, 2);
    await subscribe5(c, [{ topic: "x/y", qos: 0 }], undefined, 3);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "x/y", "one", 1);
    const m = await c.next("publish");
    assert.equal(m.qos, 1, "the highest QoS of the matching subscriptions");
    assert.deepEqual(m.properties?.subscriptionIdentifiers, [3, 7]);
    await c.send({ type: "puback", packetId: m.packetId! });
    await assertNone(c, "publish");
    c.close();
    pub.close();
  });
});

Deno.test("one fan-out to a 3.1.1 subscriber, a 5.0 one with an identifier, one without and one using topic aliases [MQTT-3.3.4-3]", async () => {
  await withBroker(async (b) => {
    const old = await connected(b, "old");
    await subscribe(old, [["f/t", 1]]);
    const { c: id } = await connected5(b, "id");
    await subscribe5(id, [{ topic: "f/t", qos: 1 }], 9);
    const { c: plain } = await connected5(b, "plain");
    await subscribe5(plain, [{ topic: "f/t", qos: 1 }]);
    const { c: alias } = await connected5(b, "alias", { topicAliasMaximum: 5 });
    await subscribe5(alias, [{ topic: "f/t", qos: 0 }], 11);
    const { c: pub } = await connected5(b, "pub");
    await publishAcked(pub, "f/t", "hello", 1);
    const o = await old.next("publish");
    assert.equal(text(o), "hello");
    const i = await id.next("publish");
    assert.deepEqual(i.properties?.subscriptionIdentifiers, [9]);
    const p = await plain.next("publish");
    assert.equal(p.properties?.subscriptionIdentifiers, undefined);
    const a = await alias.next("publish");
    assert.deepEqual(a.properties?.subscriptionIdentifiers, [11]);
    assert.equal(a.properties?.topicAlias, 1);
    for (const c of [old, id, plain, alias, pub]) c.close();
  });
});

Deno.test("a Subscription Identifier of 0 is a protocol error: DISCONNECT 0x82 [3.8.2.1.2]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "s");
    // SUBSCRIBE id 1, properties: length 2, 0x0B 0x00; filter "a", options QoS 0.
    await c.trySendBytes(hex("82 08 0001 02 0b 00 0001 61 00"));
    await expectDisconnect(c, ReasonCode.ProtocolError);
  });
});

Deno.test("two Subscription Identifiers in one SUBSCRIBE are a protocol error [3.8.2.1.2]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "s");
    await c.trySendBytes(hex("82 0a 0001 04 0b 01 0b 02 0001 61 00"));
    await expectDisconnect(c, ReasonCode.ProtocolError);
  });
});

Deno.test("No Local on a shared subscription is a protocol error [MQTT-3.8.3-4]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "s");
    // filter "$share/g/t" (10 bytes), options 0x04 (No Local).
    await c.trySendBytes(hex("82 10 0001 00 000a 2473686172652f672f74 04"));
    await expectDisconnect(c, ReasonCode.ProtocolError);
  });
});

Deno.test("SUBACK per filter: 0x87 not authorized, 0x97 over the subscription limit, 0xA2 wildcards off; 3.1.1 gets 0x80 [MQTT-3.9.3-1]", async () => {
  await withBroker(async (b) => {
    const { c, ack } = await connected5(b, "s");
    assert.equal(
      ack.properties?.wildcardSubscriptionAvailable,
      0,
      "CONNACK says wildcards are off",
    );
    assert.deepEqual(
      await subscribe5(c, [
        { topic: "ok/1", qos: 0 },
        { topic: "secret/x", qos: 0 },
        { topic: "ok/+", qos: 0 },
        { topic: "ok/2", qos: 1 },
        { topic: "ok/3", qos: 0 },
      ]),
      [
        0,
        ReasonCode.NotAuthorized,
        ReasonCode.WildcardSubscriptionsNotSupported,
        1,
        ReasonCode.QuotaExceeded,
      ],
    );
    const old = await connected(b, "old");
    assert.deepEqual(await subscribe(old, [["ok/#", 0], ["secret/y", 0], ["ok/1", 0]]), [
      0x80,
      0x80,
      0,
    ]);
    c.close();
    old.close();
  }, {
    options: { wildcardSubscriptionAvailable: false, maxSubscriptionsPerClient: 2 },
    authorizer: {
      canPublish: () => true,
      canSubscribe: (_c, f) => !f.startsWith("secret/"),
    },
  });
});

Deno.test("a SUBACK with a refused filter carries a reason string only if the client allows problem information [MQTT-3.1.2-29]", async () => {
  const authorizer = {
    canPublish: () => true,
    canSubscribe: (_c: unknown, f: string) => f !== "no",
  };
  await withBroker(async (b) => {
    const { c: yes } = await connected5(b, "yes");
    await yes.send({ type: "subscribe", packetId: 1, subscriptions: [{ topic: "no", qos: 0 }] });
    assert.equal(typeof (await yes.next("suback")).properties?.reasonString, "string");
    const { c: quiet } = await connected5(b, "quiet", { requestProblemInformation: 0 });
    await quiet.send({ type: "subscribe", packetId: 1, subscriptions: [{ topic: "no", qos: 0 }] });
    const s = await quiet.next("suback");
    assert.deepEqual(s.reasonCodes, [ReasonCode.NotAuthorized]);
    assert.equal(s.properties, undefined);
    yes.close();
    quiet.close();
  }, { authorizer });
});

Deno.test("subscription options and identifiers, and the identifiers of queued messages, survive a restart (SqliteStore) [MQTT-3.3.4-3]", async () => {
  await withTempDir(async (dir) => {
    const b1 = makeBroker({ store: sqliteStore(dir), options: { durable: true } });
    await b1.start();
    const { c: sub } = await connected5(b1, "dur", { sessionExpiryInterval: 600 });
    await subscribe5(sub, [{ topic: "d/t", qos: 1, noLocal: true, retainAsPublished: true }], 5);
    await drop(sub);
    const pub = await connected(b1, "pub");
    await publishAcked(pub, "d/t", "queued", 1, { retain: true });
    pub.close();
    await b1.close();

    const b2 = makeBroker({ store: sqliteStore(dir), options: { durable: true } });
    await b2.start();
    try {
      const rec = b2.sessions.get("dur")?.subscriptions.get("d/t");
      assert.deepEqual(rec, {
        filter: "d/t",
        qos: 1,
        noLocal: true,
        retainAsPublished: true,
        subscriptionId: 5,
      });
      const { c: back } = await connected5(b2, "dur", { sessionExpiryInterval: 600 }, {
        clean: false,
      });
      const q = await back.next("publish");
      assert.equal(text(q), "queued");
      assert.equal(q.retain, true, "Retain As Published");
      assert.deepEqual(q.properties?.subscriptionIdentifiers, [5]);
      await back.send({ type: "puback", packetId: q.packetId! });
      // No Local still holds: its own message does not come back, another client's does.
      await publishAcked(back, "d/t", "own", 1);
      const pub2 = await connected(b2, "pub2");
      await publishAcked(pub2, "d/t", "live", 1);
      const live = await back.next("publish");
      assert.equal(text(live), "live");
      assert.deepEqual(live.properties?.subscriptionIdentifiers, [5]);
      back.close();
      pub2.close();
    } finally {
      await b2.close();
    }
  });
});
