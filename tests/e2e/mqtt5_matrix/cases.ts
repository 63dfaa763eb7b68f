/**
 * The MQTT 5.0 feature cases every deployment runs (issue 13: every feature end to end over TCP,
 * TLS and WebSocket, with the SQLite and Redis stores and across cluster nodes). Each case takes a
 * Deployment (deployment.ts) and uses its own topics and client ids, so cases share one broker.
 * On the cluster deployment publishers sit on node 0 and subscribers on node 1 wherever the case
 * allows, and a resumed session comes back on the other node.
 *
 * The matrix files (tcp_memory, tls_sqlite, ws_redis, cluster) run `runMatrix` with their
 * deployment; docs/mqtt5.md lists which deployment covers what.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { IPublishPacket } from "mqtt";
import { uid } from "../../helpers/broker.ts";
import { waitFor } from "../../helpers/wait.ts";
import {
  DENIED_PREFIX,
  type Deployment,
  RESPONSE_INFORMATION,
  SERVER_TOPIC_ALIAS_MAXIMUM,
} from "./deployment.ts";
import { awaitRoute, peer } from "./peer.ts";
import { pahoUserProperties } from "./paho.ts";

export interface Case {
  name: string;
  run(d: Deployment): Promise<void>;
}

/** Every PUBLISH property a client may set, with a user property name repeated. */
function allProperties(n: number) {
  return {
    payloadFormatIndicator: true,
    messageExpiryInterval: 600,
    contentType: "application/json; charset=utf-8",
    responseTopic: `reply/${n}`,
    correlationData: Buffer.from([0xc0, 0xff, 0x00, 0xee, n]),
    userProperties: { trace: [`t${n}`, "again", `t${n}`], hop: "one" },
  };
}

/** Checks that `p` carries allProperties(n) unchanged, the expiry counted down (MQTT-3.3.2-6). */
function assertAllProperties(p: IPublishPacket, n: number, what: string) {
  const want = allProperties(n);
  const got = p.properties ?? {};
  assert.equal(got.payloadFormatIndicator, true, `${what}: payload format`);
  assert.equal(got.contentType, want.contentType, `${what}: content type`);
  assert.equal(got.responseTopic, want.responseTopic, `${what}: response topic`);
  assert.deepEqual(Buffer.from(got.correlationData!), want.correlationData, `${what}: corr. data`);
  assert.deepEqual({ ...got.userProperties }, want.userProperties, `${what}: user properties`);
  const left = got.messageExpiryInterval!;
  assert.ok(left >= 1 && left <= 600, `${what}: remaining expiry ${left}`);
}

const persistent = (clientId: string, expiry = 300) => ({
  clientId,
  clean: false,
  properties: { sessionExpiryInterval: expiry },
});

/** [MQTT-3.1.2-4] [MQTT-3.1.2-5] [MQTT-3.1.2-23] [MQTT-3.2.2-16] [MQTT-3.3.2-5] [MQTT-3.3.2-6] */
const sessions: Case = {
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
const receiveMaximum: Case = {
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
    const pub = await peer(d, 0);
    await awaitRoute(pub, [sub], `${t}/probe`);
    for (let i = 0; i < 5; i++) await pub.client.publishAsync(`${t}/q`, `q${i}`, { qos: 1 });
    await pub.client.publishAsync(`${t}/marker`, "m", { qos: 0 });
    await waitFor(() => sub.wire.some((p) => p.topic === `${t}/marker`), {
      what: "the QoS 0 marker on the wire",
      detail: () => sub.wire.map((p) => p.topic).join(","),
    });
    const onWire = () => sub.wire.filter((p) => p.topic === `${t}/q`).length;
    assert.equal(onWire(), 2, "only Receive Maximum messages before the acks");
    holding = false;
    for (const f of held.splice(0)) f();
    const all = await sub.waitFor(`${t}/q`, 5);
    assert.deepEqual(all.map((m) => m.payload), ["q0", "q1", "q2", "q3", "q4"]);
    await sub.close();
    await pub.close();
  },
};

/** [MQTT-3.1.2-24] [MQTT-3.1.2-25] */
const maximumPacketSize: Case = {
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

/** [MQTT-3.3.2-8] [MQTT-3.3.2-11] [MQTT-3.3.2-12] */
const topicAliases: Case = {
  name:
    "Topic Alias both ways: the publisher's aliases resolved, the broker's own towards a subscriber that allows them",
  async run(d) {
    const t = uid("m5ta");
    const sub = await peer(d, 1, { properties: { topicAliasMaximum: 4 } });
    await sub.client.subscribeAsync(`${t}/#`, { qos: 1 });
    const pub = await peer(d, 0, { autoAssignTopicAlias: true });
    assert.equal(pub.connack.properties?.topicAliasMaximum, SERVER_TOPIC_ALIAS_MAXIMUM);
    const sent: { topic: string; alias?: number }[] = [];
    pub.client.on("packetsend", (p) => {
      if (p.cmd === "publish") sent.push({ topic: p.topic, alias: p.properties?.topicAlias });
    });
    await awaitRoute(pub, [sub], `${t}/probe`);
    for (let i = 0; i < 3; i++) await pub.client.publishAsync(`${t}/same`, `n${i}`, { qos: 1 });
    const got = await sub.waitFor(`${t}/same`, 3);
    assert.deepEqual(got.map((m) => m.payload), ["n0", "n1", "n2"]);
    const aliases = got.map((m) => m.packet.properties?.topicAlias);
    assert.ok(aliases.every((a) => a !== undefined && a >= 1 && a <= 4), `aliases ${aliases}`);
    assert.deepEqual(got.map((m) => m.packet.topic === ""), [false, true, true]);
    const same = sent.filter((s) => s.alias !== undefined);
    assert.ok(same.some((s) => s.topic === ""), "the publisher sent by alias alone");
    await sub.close();
    await pub.close();
  },
};

/** [MQTT-3.3.2-4] [MQTT-3.3.2-15..20] [MQTT-3.3.4-3] [MQTT-3.3.4-4] */
const publishProperties: Case = {
  name:
    "PUBLISH properties reach a live 5.0 subscriber unchanged with every matching Subscription Identifier; a 3.1.1 subscriber gets the payload",
  async run(d) {
    const t = uid("m5pp");
    const sub = await peer(d, 1);
    await sub.client.subscribeAsync(`${t}/#`, {
      qos: 1,
      properties: { subscriptionIdentifier: 7 },
    });
    await sub.client.subscribeAsync(`${t}/x/+`, {
      qos: 1,
      properties: { subscriptionIdentifier: 9 },
    });
    const old = await peer(d, 1, { protocolVersion: 4 });
    await old.client.subscribeAsync(`${t}/#`, { qos: 1 });
    const pub = await peer(d, 0);
    await awaitRoute(pub, [sub], `${t}/probe`);
    await awaitRoute(pub, [old], `${t}/probe`);
    await pub.client.publishAsync(`${t}/x/y`, '{"v":1}', { qos: 1, properties: allProperties(2) });
    const [m] = await sub.waitFor(`${t}/x/y`);
    assertAllProperties(m.packet, 2, "live message");
    const ids = m.packet.properties!.subscriptionIdentifier;
    assert.deepEqual([ids].flat().sort(), [7, 9], "one copy, both identifiers");
    const [o] = await old.waitFor(`${t}/x/y`);
    assert.equal(o.payload, '{"v":1}');
    assert.equal(o.packet.properties, undefined);
    await sub.sync();
    assert.equal(sub.on(`${t}/x/y`).length, 1, "one copy for overlapping subscriptions");
    for (const c of [sub, old, pub]) await c.close();
  },
};

/** [MQTT-3.3.2-17] [MQTT-3.3.2-18] */
const userPropertyOrder: Case = {
  name:
    "paho 5.0: user properties arrive in order with interleaved repeated names, with the other properties",
  async run(d) {
    const r = await pahoUserProperties(d, uid("m5paho"));
    assert.deepEqual(r.userProperty, [["a", "1"], ["b", "2"], ["a", "3"], ["a", "1"]]);
    assert.equal(r.contentType, "text/plain");
    assert.equal(r.responseTopic, "paho/reply");
    assert.equal(r.payloadFormatIndicator, 1);
    assert.equal(r.correlationData, "00ff10");
  },
};

/** [MQTT-3.8.3-3] [MQTT-3.3.1-9..13] */
const subscribeOptions: Case = {
  name:
    "subscribe options: No Local, Retain As Published 0/1, Retain Handling 0 (every subscribe), 1 (new only), 2 (never)",
  async run(d) {
    const t = uid("m5so");
    // No Local: the client's own message is not sent back; another client's is.
    const self = await peer(d, 1);
    await self.client.subscribeAsync(`${t}/nl`, { qos: 1, nl: true });
    const other = await peer(d, 0);
    await awaitRoute(other, [self], `${t}/nl`);
    await self.client.publishAsync(`${t}/nl`, "own", { qos: 1 });
    await other.client.publishAsync(`${t}/nl`, "theirs", { qos: 1 });
    await waitFor(() => self.on(`${t}/nl`).some((m) => m.payload === "theirs"), { what: "theirs" });
    assert.ok(!self.on(`${t}/nl`).some((m) => m.payload === "own"), "own message came back");

    // Retain Handling.
    await other.client.publishAsync(`${t}/r`, "kept", { qos: 1, retain: true });
    const rh = await peer(d, 1);
    await rh.client.subscribeAsync(`${t}/r`, { qos: 1, rh: 0 });
    const [first] = await rh.waitFor(`${t}/r`);
    assert.equal(first.packet.retain, true);
    await rh.client.subscribeAsync(`${t}/r`, { qos: 1, rh: 0 });
    await rh.waitFor(`${t}/r`, 2);
    await rh.client.subscribeAsync(`${t}/r`, { qos: 1, rh: 1 });
    await rh.sync();
    assert.equal(rh.on(`${t}/r`).length, 2, "Retain Handling 1 on an existing subscription");
    await rh.client.subscribeAsync(`${t}/+`, { qos: 1, rh: 1 });
    await rh.waitFor(`${t}/r`, 3);
    const never = await peer(d, 1);
    await never.client.subscribeAsync(`${t}/r`, { qos: 1, rh: 2 });
    await never.sync();
    assert.equal(never.on(`${t}/r`).length, 0, "Retain Handling 2");

    // Retain As Published on live forwarding.
    const rap = await peer(d, 1);
    await rap.client.subscribeAsync(`${t}/live`, { qos: 1, rap: true, rh: 2 });
    const norap = await peer(d, 1);
    await norap.client.subscribeAsync(`${t}/live`, { qos: 1, rap: false, rh: 2 });
    await awaitRoute(other, [rap], `${t}/live`);
    await awaitRoute(other, [norap], `${t}/live`);
    await other.client.publishAsync(`${t}/live`, "L", { qos: 1, retain: true });
    const pick = async (c: typeof rap) =>
      (await waitFor(() => c.on(`${t}/live`).find((m) => m.payload === "L"), { what: "L" }))
        .packet.retain;
    assert.equal(await pick(rap), true, "Retain As Published 1");
    assert.equal(await pick(norap), false, "Retain As Published 0");
    for (const topic of [`${t}/r`, `${t}/live`]) {
      await other.client.publishAsync(topic, "", { qos: 1, retain: true });
    }
    for (const c of [self, other, rh, never, rap, norap]) await c.close();
  },
};

/** [MQTT-4.8.2-1] [MQTT-4.8.2-2] */
const sharedSubscriptions: Case = {
  name:
    "shared subscription with a 5.0 and a 3.1.1 member: each message to exactly one member, all to a plain subscriber, no retained message on subscribe",
  async run(d) {
    const t = uid("m5sh");
    const pub = await peer(d, 0);
    await pub.client.publishAsync(`${t}/s`, "retained", { qos: 1, retain: true });
    const filter = `$share/g${t}/${t}/s`;
    const m1 = await peer(d, 0);
    const m2 = await peer(d, 1, { protocolVersion: 4 });
    await m1.client.subscribeAsync(filter, { qos: 1 });
    await m2.client.subscribeAsync(filter, { qos: 1 });
    const plain = await peer(d, 1);
    await plain.client.subscribeAsync(`${t}/s`, { qos: 1, rh: 2 });
    await m1.sync();
    await m2.sync();
    assert.equal(m1.messages.length + m2.messages.length, 0, "no retained message to members");
    await awaitRoute(pub, [plain], `${t}/s`);
    const n = 10;
    for (let i = 0; i < n; i++) await pub.client.publishAsync(`${t}/s`, `s${i}`, { qos: 1 });
    const want = Array.from({ length: n }, (_, i) => `s${i}`);
    const real = (c: typeof m1) =>
      c.on(`${t}/s`).map((m) => m.payload).filter((p) => p !== "probe");
    await waitFor(() => real(m1).length + real(m2).length >= n, {
      what: "every shared message",
      detail: () => `m1 ${real(m1)} m2 ${real(m2)}`,
    });
    await plain.waitFor(`${t}/s`, n);
    await m1.sync();
    await m2.sync();
    assert.deepEqual([...real(m1), ...real(m2)].sort(), [...want].sort(), "each exactly once");
    assert.deepEqual(plain.on(`${t}/s`).map((m) => m.payload).filter((p) => p !== "probe"), want);
    await pub.client.publishAsync(`${t}/s`, "", { qos: 1, retain: true });
    for (const c of [pub, m1, m2, plain]) await c.close();
  },
};

/** [MQTT-3.1.2-8] [MQTT-3.1.3-9] [MQTT-3.1.2-10] */
const wills: Case = {
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

/** [MQTT-3.1.2-28] [MQTT-3.1.2-29] [MQTT-3.2.2-19] */
const reasonCodes: Case = {
  name:
    "Response Information on request; reason codes on failures: SUBACK/PUBACK/PUBREC 0x87, PUBACK 0x10 and 0x99, UNSUBACK 0x11; no Reason String when Request Problem Information is 0",
  async run(d) {
    const t = uid("m5rc");
    const asks = await peer(d, 0, { properties: { requestResponseInformation: true } });
    assert.equal(asks.connack.properties?.responseInformation, RESPONSE_INFORMATION);
    const quiet = await peer(d, 1, { properties: { requestProblemInformation: false } });
    assert.equal(quiet.connack.properties?.responseInformation, undefined);

    const codeOf = async (c: typeof asks, cmd: string, send: () => Promise<unknown>) => {
      const before = c.acks.length;
      await send().catch(() => {});
      const p = await waitFor(() => c.acks.slice(before).find((a) => a.cmd === cmd), {
        what: `${cmd} on ${d.name}`,
      }) as { reasonCode?: number; granted?: number[]; properties?: { reasonString?: string } };
      return p;
    };
    const denied = `${DENIED_PREFIX}/${t}`;
    const sa = await codeOf(asks, "suback", () => asks.client.subscribeAsync(denied, { qos: 1 }));
    assert.deepEqual(sa.granted, [0x87]);
    assert.ok(sa.properties?.reasonString, "a Reason String where allowed");
    const sq = await codeOf(quiet, "suback", () => quiet.client.subscribeAsync(denied, { qos: 1 }));
    assert.deepEqual(sq.granted, [0x87]);
    assert.equal(sq.properties?.reasonString, undefined, "Request Problem Information 0");

    const pa = await codeOf(
      asks,
      "puback",
      () => asks.client.publishAsync(denied, "x", { qos: 1 }),
    );
    assert.equal(pa.reasonCode, 0x87);
    const pr = await codeOf(
      asks,
      "pubrec",
      () => asks.client.publishAsync(denied, "x", { qos: 2 }),
    );
    assert.equal(pr.reasonCode, 0x87);
    const none = await codeOf(
      asks,
      "puback",
      () => asks.client.publishAsync(`${t}/nobody`, "x", { qos: 1 }),
    );
    assert.equal(none.reasonCode, 0x10, "No matching subscribers");
    const bad = await codeOf(
      asks,
      "puback",
      () =>
        asks.client.publishAsync(`${t}/bad`, Buffer.from([0xff, 0xfe]), {
          qos: 1,
          properties: { payloadFormatIndicator: true },
        }),
    );
    assert.equal(bad.reasonCode, 0x99);
    const un = await codeOf(asks, "unsuback", () => asks.client.unsubscribeAsync(`${t}/never`));
    assert.deepEqual(un.granted, [0x11]);
    assert.ok(asks.client.connected && quiet.client.connected, "refusals keep the connection");
    await asks.close();
    await quiet.close();
  },
};

/** Every case, in the order the matrix runs them. */
export const cases: Case[] = [
  sessions,
  receiveMaximum,
  maximumPacketSize,
  topicAliases,
  publishProperties,
  userPropertyOrder,
  subscribeOptions,
  sharedSubscriptions,
  wills,
  reasonCodes,
];

/**
 * Registers one Deno test for a deployment, with a step per case: the deployment starts once,
 * every case runs even when an earlier one failed, and it is torn down at the end.
 */
export function runMatrix(
  name: string,
  ignore: boolean,
  setup: () => Promise<{ deployment: Deployment; close(): Promise<void> }>,
): void {
  Deno.test({
    name: `MQTT 5.0 matrix on ${name}`,
    ignore,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async (t) => {
      const { deployment, close } = await setup();
      try {
        for (const c of cases) await t.step(c.name, () => c.run(deployment));
      } finally {
        await close();
      }
    },
  });
}
