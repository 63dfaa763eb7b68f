/**
 * MQTT 5.0 CONNECT / CONNACK: a 5.0 client is accepted and told the server's limits truthfully
 * (3.2.2.3), refusals carry 5.0 reason codes, and 3.1.1 / 5.0 clients talk to each other.
 */
import assert from "node:assert/strict";
import { ReasonCode } from "../../src/codec/reason_codes.ts";
import {
  connected,
  disconnect,
  MemoryClient,
  publishAcked,
  subscribe,
  text,
  unsubscribe,
  withBroker,
} from "./harness.ts";
import { connect5, connected5 } from "./mqtt5_harness.ts";

Deno.test("a 5.0 CONNECT gets CONNACK 0 with the server's limits, defaults omitted [3.2.2.3]", async () => {
  await withBroker(async (b) => {
    const { c, ack } = await connected5(b, "five");
    assert.equal(ack.sessionPresent, false, "Clean Start 1: session present 0 [MQTT-3.2.2-2]");
    assert.deepEqual(ack.properties, {
      maximumPacketSize: 1024 * 1024,
      topicAliasMaximum: 10,
      // Said outright although 1 is the default (3.2.2.3.12).
      subscriptionIdentifiersAvailable: 1,
      // Shared Subscription Available 1 is the default: not sent.
    });
    assert.equal(b.sessions.get("five")?.protocolVersion, 5);
    c.close();
  });
});

Deno.test("CONNACK advertises a lower Receive Maximum, Maximum QoS, no retain, other sizes [MQTT-3.2.2-9]", async () => {
  await withBroker(async (b) => {
    const { c, ack } = await connected5(b, "limits");
    assert.deepEqual(ack.properties, {
      receiveMaximum: 5,
      maximumQoS: 1,
      retainAvailable: 0,
      maximumPacketSize: 2000,
      subscriptionIdentifiersAvailable: 1,
      // Shared Subscription Available 1 is the default: not sent.
    });
    c.close();
  }, {
    options: {
      receiveMaximum: 5,
      maxQos: 1,
      retainAvailable: false,
      maxPacketSize: 2000,
      topicAliasMaximum: 0,
    },
  });
});

Deno.test("an empty client id is assigned one, whatever Clean Start says [MQTT-3.1.3-6] [MQTT-3.1.3-7]", async () => {
  await withBroker(async (b) => {
    for (const clean of [true, false]) {
      const c = new MemoryClient(b, 5);
      await c.send(connect5("", { clean }));
      const ack = await c.next("connack");
      assert.equal(ack.reasonCode, 0);
      const id = ack.properties?.assignedClientIdentifier;
      assert.ok(id && id.length > 0, "Assigned Client Identifier in CONNACK");
      assert.ok(b.sessions.has(id!), "the session is under the assigned id");
      await disconnect(c);
    }
  });
});

Deno.test("a Session Expiry Interval above the configured one is lowered and the CONNACK says so", async () => {
  await withBroker(async (b) => {
    const { c, ack } = await connected5(b, "long", { sessionExpiryInterval: 0xffffffff });
    assert.equal(ack.properties?.sessionExpiryInterval, 7200);
    assert.equal(b.sessions.get("long")?.expiryInterval, 7200);
    c.close();
    const { c: c2, ack: ack2 } = await connected5(b, "short", { sessionExpiryInterval: 100 });
    assert.equal(ack2.properties?.sessionExpiryInterval, undefined, "granted as asked: not sent");
    assert.equal(b.sessions.get("short")?.expiryInterval, 100);
    c2.close();
  });
});

Deno.test("max-keepalive: a longer or zero keepalive gets Server Keep Alive, a shorter one is kept [MQTT-3.2.2-21] [MQTT-3.2.2-22]", async () => {
  await withBroker(async (b) => {
    for (const [asked, server] of [[0, 30], [60, 30], [10, undefined], [30, undefined]]) {
      const { c, ack } = await connected5(b, `ka${asked}`, undefined, { keepalive: asked! });
      assert.equal(ack.properties?.serverKeepAlive, server, `keepalive ${asked}`);
      c.close();
    }
  }, { options: { maxKeepalive: 30 } });
});

Deno.test("without max-keepalive no Server Keep Alive is sent", async () => {
  await withBroker(async (b) => {
    const { c, ack } = await connected5(b, "ka", undefined, { keepalive: 0 });
    assert.equal(ack.properties?.serverKeepAlive, undefined);
    c.close();
  });
});

Deno.test("Response Information only when requested and configured [3.1.2.11.6]", async () => {
  await withBroker(async (b) => {
    const asked = await connected5(b, "asks", { requestResponseInformation: 1 });
    assert.equal(asked.ack.properties?.responseInformation, "replies/");
    asked.c.close();
    const silent = await connected5(b, "silent", { requestResponseInformation: 0 });
    assert.equal(silent.ack.properties?.responseInformation, undefined);
    silent.c.close();
  }, { options: { responseInformation: "replies/" } });
  await withBroker(async (b) => {
    const asked = await connected5(b, "asks", { requestResponseInformation: 1 });
    assert.equal(asked.ack.properties?.responseInformation, undefined, "none configured");
    asked.c.close();
  });
});

Deno.test("a refused 5.0 CONNECT gets the 5.0 reason code and a Reason String; 3.1.1 keeps its code", async () => {
  const authenticator = {
    authenticate: () => ({ ok: false as const, reasonCode: 4, reason: "bad password" }),
  };
  await withBroker(async (b) => {
    const c = new MemoryClient(b, 5);
    await c.send(connect5("who", { username: "u", password: new Uint8Array([1]) }));
    const ack = await c.next("connack");
    assert.equal(ack.reasonCode, ReasonCode.BadUserNameOrPassword);
    assert.equal(ack.properties?.reasonString, "bad password");
    await c.waitClosed();
    const old = new MemoryClient(b, 4);
    assert.equal((await old.connect("who")).reasonCode, 4);
    await old.waitClosed();
  }, { authenticator });
});

Deno.test("a Reason String that would exceed the client's Maximum Packet Size is left out [MQTT-3.2.2-19]", async () => {
  const authenticator = {
    authenticate: () => ({ ok: false as const, reasonCode: 5, reason: "x".repeat(100) }),
  };
  await withBroker(async (b) => {
    const c = new MemoryClient(b, 5);
    await c.send(connect5("small", { properties: { maximumPacketSize: 40 } }));
    const ack = await c.next("connack");
    assert.equal(ack.reasonCode, ReasonCode.NotAuthorized);
    assert.equal(ack.properties, undefined);
    await c.waitClosed();
  }, { authenticator });
});

Deno.test("an Authentication Method is refused with 0x8C while enhanced auth is not implemented [MQTT-4.12.0-1]", async () => {
  await withBroker(async (b) => {
    const c = new MemoryClient(b, 5);
    await c.send(connect5("scram", { properties: { authenticationMethod: "SCRAM-SHA-256" } }));
    assert.equal((await c.next("connack")).reasonCode, ReasonCode.BadAuthenticationMethod);
    await c.waitClosed();
    assert.equal(b.sessions.size, 0);
  });
});

Deno.test("a will above Maximum QoS gets 0x9B, a retained will without retain 0x9A [MQTT-3.2.2-12] [MQTT-3.2.2-13]", async () => {
  const will = { topic: "w", payload: new Uint8Array(), qos: 2 as const, retain: false };
  await withBroker(async (b) => {
    const c = new MemoryClient(b, 5);
    await c.send(connect5("w1", { will }));
    assert.equal((await c.next("connack")).reasonCode, ReasonCode.QoSNotSupported);
    await c.waitClosed();
    const c2 = new MemoryClient(b, 5);
    await c2.send(connect5("w2", { will: { ...will, qos: 0, retain: true } }));
    assert.equal((await c2.next("connack")).reasonCode, ReasonCode.RetainNotSupported);
    await c2.waitClosed();
  }, { options: { maxQos: 1, retainAvailable: false } });
});

Deno.test("a will topic over the topic limits gets CONNACK 0x90 [3.1.3.3]", async () => {
  await withBroker(async (b) => {
    const c = new MemoryClient(b, 5);
    await c.send(
      connect5("w", { will: { topic: "a/b/c", payload: new Uint8Array(), qos: 0, retain: false } }),
    );
    assert.equal((await c.next("connack")).reasonCode, ReasonCode.TopicNameInvalid);
    await c.waitClosed();
  }, { options: { maxTopicLevels: 2 } });
});

Deno.test("a 5.0 client subscribes and receives QoS 0, 1 and 2; SUBACK and UNSUBACK carry reason codes [MQTT-3.9.3-1] [MQTT-3.11.3-1]", async () => {
  await withBroker(async (b) => {
    const { c: sub } = await connected5(b, "sub");
    assert.deepEqual(await subscribe(sub, [["q/0", 0], ["q/1", 1], ["q/2", 2]]), [0, 1, 2]);
    const { c: pub } = await connected5(b, "pub");
    await publishAcked(pub, "q/0", "zero", 0);
    await publishAcked(pub, "q/1", "one", 1);
    await publishAcked(pub, "q/2", "two", 2);
    const m0 = await sub.next("publish");
    assert.deepEqual([m0.topic, text(m0), m0.qos], ["q/0", "zero", 0]);
    const m1 = await sub.next("publish");
    assert.deepEqual([m1.topic, text(m1), m1.qos], ["q/1", "one", 1]);
    await sub.send({ type: "puback", packetId: m1.packetId! });
    const m2 = await sub.next("publish");
    assert.deepEqual([m2.topic, text(m2), m2.qos], ["q/2", "two", 2]);
    await sub.send({ type: "pubrec", packetId: m2.packetId! });
    assert.equal((await sub.next("pubrel")).packetId, m2.packetId);
    await sub.send({ type: "pubcomp", packetId: m2.packetId! });
    await sub.send({ type: "unsubscribe", packetId: 9, topics: ["q/0", "nothing"] });
    const unsuback = await sub.next("unsuback");
    assert.deepEqual(unsuback.reasonCodes, [0x00, ReasonCode.NoSubscriptionExisted]);
    await unsubscribe(sub, ["q/1"], 10);
    sub.close();
    pub.close();
  });
});

Deno.test("5.0 SUBACK reason codes: invalid filter 0x8F, shared 0x9E when off, subscription identifier 0xA1, QoS capped [MQTT-3.2.2-10]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "s");
    assert.deepEqual(
      await subscribe(c, [["a/#/b", 0], ["$share/g/t", 1], ["ok", 2]]),
      [ReasonCode.TopicFilterInvalid, ReasonCode.SharedSubscriptionsNotSupported, 1],
    );
    await c.send({
      type: "subscribe",
      packetId: 3,
      subscriptions: [{ topic: "x", qos: 0 }],
      properties: { subscriptionIdentifiers: [7] },
    });
    assert.deepEqual(
      (await c.next("suback")).reasonCodes,
      [ReasonCode.SubscriptionIdentifiersNotSupported],
    );
    c.close();
  }, {
    options: {
      maxQos: 1,
      sharedSubscriptionAvailable: false,
      subscriptionIdentifiersAvailable: false,
    },
  });
});

Deno.test("a 3.1.1 subscriber gets a 5.0 publisher's messages and the reverse", async () => {
  await withBroker(async (b) => {
    const old = await connected(b, "old");
    const { c: five } = await connected5(b, "five");
    await subscribe(old, [["to/old", 1]]);
    await subscribe(five, [["to/five", 1]]);
    await publishAcked(five, "to/old", "from five", 1);
    await publishAcked(old, "to/five", "from old", 1);
    const a = await old.next("publish");
    assert.deepEqual([a.topic, text(a)], ["to/old", "from five"]);
    const z = await five.next("publish");
    assert.deepEqual([z.topic, text(z)], ["to/five", "from old"]);
    old.close();
    five.close();
  });
});

Deno.test("a will's properties reach a 5.0 subscriber without the Will Delay Interval [3.1.3.2]", async () => {
  await withBroker(async (b) => {
    const { c: sub } = await connected5(b, "watch");
    await subscribe(sub, [["wills/#", 0]]);
    const will = {
      topic: "wills/w",
      payload: new TextEncoder().encode("gone"),
      qos: 0 as const,
      retain: false,
      properties: { willDelayInterval: 0, contentType: "text/plain", userProperties: [["k", "v"]] },
    };
    const c = new MemoryClient(b, 5);
    // deno-lint-ignore no-explicit-any
    await c.send(connect5("w", { will: will as any }));
    assert.equal((await c.next("connack")).reasonCode, 0);
    c.close();
    const m = await sub.next("publish");
    assert.equal(text(m), "gone");
    assert.deepEqual(m.properties, { contentType: "text/plain", userProperties: [["k", "v"]] });
    sub.close();
  });
});
