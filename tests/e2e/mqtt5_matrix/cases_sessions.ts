/**
 * Matrix cases about sessions and connections: session lifetime and resumption (through the
 * deployment's restart), flow control, packet size, wills.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { uid } from "../../helpers/broker.ts";
import { waitFor } from "../../helpers/wait.ts";
import { allProperties, assertAllProperties, type Case, persistent } from "./case_kit.ts";
import { awaitRoute, peer } from "./peer.ts";

/** [MQTT-3.1.2-4] [MQTT-3.1.2-5] [MQTT-3.1.2-23] [MQTT-3.2.2-16] [MQTT-3.3.2-5] [MQTT-3.3.2-6] */
export const sessions: Case = {
  name:
    "sessions: Assigned Client Identifier, Clean Start, Session Expiry (also set to 0 at DISCONNECT); queued and retained messages keep every property and their counted-down expiry across the offline time, expired ones are never sent",
  async run(d) {
    const t = uid("m5sess");
    const anon = await peer(d, 0, { clientId: "" });
    const assigned = anon.connack.properties?.assignedClientIdentifier;
    assert.ok(assigned && assigned.length > 0, `assigned id ${assigned}`);
    assert.equal(anon.connack.sessionPresent, false);
    await anon.close();

    const id = `${t}-sub`;
    const sub = await peer(d, 1, persistent(id));
    assert.equal(sub.connack.sessionPresent, false);
    await sub.client.subscribeAsync(`${t}/#`, {
      qos: 1,
      properties: { subscriptionIdentifier: 42 },
    });
    // A second session whose expiry is set to 0 by its DISCONNECT: it ends there.
    const gone = await peer(d, 1, persistent(`${t}-gone`));
    await gone.client.subscribeAsync(`${t}/#`, { qos: 1 });
    const pub = await peer(d, 0);
    await awaitRoute(pub, [sub], `${t}/probe`);
    await sub.close();
    await gone.close({ sessionExpiryInterval: 0 });

    await pub.client.publishAsync(`${t}/m`, "all", { qos: 1, properties: allProperties(1) });
    await pub.client.publishAsync(`${t}/m`, "short", {
      qos: 1,
      properties: { messageExpiryInterval: 1 },
    });
    const shortAcked = Date.now();
    await pub.client.publishAsync(`${t}/m`, "last", { qos: 1 });
    // A retained message with every property, and one that expires while it is stored.
    await pub.client.publishAsync(`${t}/kept`, "kept", {
      qos: 1,
      retain: true,
      properties: allProperties(3),
    });
    await pub.client.publishAsync(`${t}/brief`, "brief", {
      qos: 1,
      retain: true,
      properties: { messageExpiryInterval: 1 },
    });
    const briefAcked = Date.now();
    await pub.close();
    // Real time has to pass for the short expiry: the broker is another process.
    await waitFor(() => Date.now() > Math.max(shortAcked, briefAcked) + 1_100, {
      what: "1 s to pass",
      interval: 20,
    });
    await d.offline();

    const back = await peer(d, 0, persistent(id));
    assert.equal(back.connack.sessionPresent, true, "the session survived");
    const got = await back.waitFor(`${t}/m`, 2);
    await back.waitFor(`${t}/kept`);
    await back.sync();
    assert.deepEqual(back.on(`${t}/m`).map((m) => m.payload), ["all", "last"]);
    // The retained ones were queued for the session too; the one that expired was dropped.
    assert.deepEqual(back.on(`${t}/kept`).map((m) => m.packet.retain), [false]);
    assert.equal(back.on(`${t}/brief`).length, 0, "an expired queued message is not sent");
    assertAllProperties(got[0].packet, 1, "queued message");
    assert.ok(got[0].packet.properties!.messageExpiryInterval! < 600, "expiry counted down");
    assert.equal(got[0].packet.properties!.subscriptionIdentifier, 42);
    assert.equal(got[1].packet.properties?.messageExpiryInterval, undefined);
    await back.close({ sessionExpiryInterval: 0 });

    // Retained: every property kept, the expiry counted down while stored; the expired one gone.
    const late = await peer(d, 1);
    await late.client.subscribeAsync(`${t}/+`, { qos: 1 });
    const [kept] = await late.waitFor(`${t}/kept`);
    await late.sync();
    assert.equal(late.on(`${t}/brief`).length, 0, "an expired retained message is not sent");
    assert.equal(kept.packet.retain, true);
    assertAllProperties(kept.packet, 3, "retained message");
    assert.ok(kept.packet.properties!.messageExpiryInterval! < 600, "retained expiry counted down");
    await late.client.publishAsync(`${t}/kept`, "", { qos: 1, retain: true });
    await late.close();

    const goneBack = await peer(d, 0, persistent(`${t}-gone`));
    assert.equal(goneBack.connack.sessionPresent, false, "expiry 0 at DISCONNECT ended it");
    await goneBack.close({ sessionExpiryInterval: 0 });
    // Clean Start 1 discards a session; with expiry 0 nothing is left after it.
    const again = await peer(d, 1, persistent(id));
    assert.equal(again.connack.sessionPresent, false);
    await again.close();
    const fresh = await peer(d, 0, { clientId: id, clean: true });
    assert.equal(fresh.connack.sessionPresent, false, "Clean Start 1: no session");
    await fresh.close();
    const after = await peer(d, 1, persistent(id));
    assert.equal(after.connack.sessionPresent, false, "Clean Start 1 ended the stored one");
    await after.close({ sessionExpiryInterval: 0 });
  },
};

/** [MQTT-3.3.4-9] [MQTT-4.9.0-2] [MQTT-4.9.0-3] */
export const receiveMaximum: Case = {
  name:
    "Receive Maximum 2: at most two QoS 1 messages unacknowledged, a QoS 0 one not held back, the rest after the acks",
  async run(d) {
    const t = uid("m5rm");
    let holding = true;
    const held: (() => void)[] = [];
    const sub = await peer(d, 1, {
      properties: { receiveMaximum: 2 },
      customHandleAcks: (_topic, _msg, _packet, done) => {
        if (holding) held.push(() => done(0));
        else done(0);
      },
    });
    await sub.client.subscribeAsync(`${t}/#`, { qos: 1 });
    // A witness on the subscriber's node: once it has all five, that node has routed them all.
    const witness = await peer(d, 1);
    await witness.client.subscribeAsync(`${t}/q`, { qos: 1 });
    const pub = await peer(d, 0);
    await awaitRoute(pub, [sub], `${t}/probe`);
    await awaitRoute(pub, [witness], `${t}/q`);
    for (let i = 0; i < 5; i++) await pub.client.publishAsync(`${t}/q`, `q${i}`, { qos: 1 });
    await waitFor(
      () => witness.on(`${t}/q`).filter((m) => m.payload !== "probe").length === 5,
      { what: "the witness's five" },
    );
    // Published on that node after them: every QoS 1 message not held back precedes it.
    await witness.client.publishAsync(`${t}/marker`, "m", { qos: 0 });
    await waitFor(() => sub.wire.some((p) => p.topic === `${t}/marker`), {
      what: "the QoS 0 marker on the wire",
      detail: () => sub.wire.map((p) => p.topic).join(","),
    });
    const onWire = () =>
      sub.wire.filter((p) => p.topic === `${t}/q` && String(p.payload) !== "probe").length;
    assert.equal(onWire(), 2, "only Receive Maximum messages before the acks");
    holding = false;
    for (const f of held.splice(0)) f();
    await waitFor(() => sub.on(`${t}/q`).filter((m) => m.payload !== "probe").length >= 5, {
      what: "all five after the acks",
    });
    const all = sub.on(`${t}/q`).filter((m) => m.payload !== "probe");
    assert.deepEqual(all.map((m) => m.payload), ["q0", "q1", "q2", "q3", "q4"]);
    for (const c of [sub, witness, pub]) await c.close();
  },
};

/** [MQTT-3.1.2-24] [MQTT-3.1.2-25] */
export const maximumPacketSize: Case = {
  name:
    "Maximum Packet Size: a message too big for the subscriber is dropped for it, the connection stays, smaller ones arrive",
  async run(d) {
    const t = uid("m5mps");
    const sub = await peer(d, 1, { properties: { maximumPacketSize: 256 } });
    assert.ok(sub.connack.properties?.maximumPacketSize, "the broker's own maximum advertised");
    await sub.client.subscribeAsync(`${t}/#`, { qos: 1 });
    const big = await peer(d, 0);
    await awaitRoute(big, [sub], `${t}/probe`);
    await big.client.publishAsync(`${t}/big`, "x".repeat(1_000), { qos: 1 });
    await big.client.publishAsync(`${t}/small`, "fits", { qos: 1 });
    await sub.waitFor(`${t}/small`);
    await sub.sync();
    assert.equal(sub.wire.filter((p) => p.topic === `${t}/big`).length, 0, "big one not sent");
    assert.ok(sub.client.connected, "the connection stays");
    await sub.close();
    await big.close();
  },
};

/** [MQTT-3.1.2-8] [MQTT-3.1.3-9] [MQTT-3.1.2-10] */
export const wills: Case = {
  name:
    "wills: Will Delay Interval with will properties, cancelled by a reconnect in time, published at once when the session ends first, and on DISCONNECT 0x04",
  async run(d) {
    const t = uid("m5will");
    const will = (name: string, delay: number) => ({
      topic: `${t}/${name}`,
      payload: Buffer.from(name),
      qos: 1 as const,
      retain: false,
      properties: {
        willDelayInterval: delay,
        contentType: "text/plain",
        userProperties: { who: name, n: ["1", "2"] },
      },
    });
    const sub = await peer(d, 0);
    await sub.client.subscribeAsync(`${t}/#`, { qos: 1 });
    const delayed = await peer(d, 1, { ...persistent(`${t}-d`, 10), will: will("delayed", 2) });
    await awaitRoute(delayed, [sub], `${t}/probe`);
    const cancelled = await peer(d, 1, { ...persistent(`${t}-c`, 10), will: will("cancelled", 2) });
    const ending = await peer(d, 1, { clientId: `${t}-e`, will: will("ending", 3600) });
    const reason4 = await peer(d, 1, { clientId: `${t}-4`, will: will("reason4", 0) });

    cancelled.drop();
    const resumed = await peer(d, 1, persistent(`${t}-c`, 10));
    const dropped = Date.now();
    delayed.drop();
    ending.drop();
    await reason4.client.endAsync(false, { reasonCode: 0x04 });
    await sub.waitFor(`${t}/ending`);
    await sub.waitFor(`${t}/reason4`);
    const [late] = await sub.waitFor(`${t}/delayed`);
    assert.ok(Date.now() - dropped >= 1_500, "the delayed will waited its interval");
    assert.equal(late.packet.properties?.contentType, "text/plain");
    assert.deepEqual({ ...late.packet.properties?.userProperties }, {
      who: "delayed",
      n: ["1", "2"],
    });
    // The cancelled will was due before the delayed one: it would have come by now.
    await sub.sync();
    assert.equal(sub.on(`${t}/cancelled`).length, 0, "a reconnect in time cancels the will");
    await resumed.close({ sessionExpiryInterval: 0 });
    const cleanup = await peer(d, 1, { ...persistent(`${t}-d`, 0), clean: true });
    await cleanup.close();
    await sub.close();
  },
};

/** [MQTT-3.1.3-9] [MQTT-3.1.2-8] */
export const willAcrossOffline: Case = {
  name:
    "a will waiting for its Will Delay Interval while the broker restarts (durable stores) is published once, with its properties, to a persistent subscriber",
  async run(d) {
    const t = uid("m5wr");
    const subId = `${t}-sub`;
    const sub = await peer(d, 0, persistent(subId));
    await sub.client.subscribeAsync(`${t}/#`, { qos: 1 });
    const dying = await peer(d, 1, {
      ...persistent(`${t}-w`, 60),
      will: {
        topic: `${t}/will`,
        payload: Buffer.from("after"),
        qos: 1,
        retain: false,
        properties: { willDelayInterval: 2, userProperties: { k: "v" }, contentType: "text/x" },
      },
    });
    await awaitRoute(dying, [sub], `${t}/probe`);
    await sub.close();
    dying.drop();
    const dropped = Date.now();
    // The broker has seen the connection end (and held the will) before it goes down.
    await waitFor(() => d.logs().includes(`client ${t}-w disconnected`), {
      what: "the broker to see the connection end",
    });
    // A SIGKILL may take what the store has not committed yet; a QoS 1 PUBACK comes after the
    // commit that covers every earlier change, the held will too.
    const barrier = await peer(d, 0, { clientId: `${t}-b` });
    await barrier.client.publishAsync(`${t}/barrier`, "b", { qos: 1 });
    await barrier.close();
    await d.offline();
    const back = await peer(d, 0, persistent(subId));
    assert.equal(back.connack.sessionPresent, true);
    const [w] = await back.waitFor(`${t}/will`, 1, 15_000);
    assert.ok(Date.now() - dropped >= 1_500, "the will waited its delay");
    assert.equal(w.payload, "after");
    assert.equal(w.packet.properties?.contentType, "text/x");
    assert.deepEqual({ ...w.packet.properties?.userProperties }, { k: "v" });
    await back.sync();
    assert.equal(back.on(`${t}/will`).length, 1, "once");
    await back.close({ sessionExpiryInterval: 0 });
    const cleanup = await peer(d, 1, { ...persistent(`${t}-w`, 0), clean: true });
    await cleanup.close();
  },
};
