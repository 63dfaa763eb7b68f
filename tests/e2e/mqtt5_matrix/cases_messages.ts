/**
 * Matrix cases about messages: topic aliases, PUBLISH properties, subscription options, shared
 * subscriptions, and the reason codes of refusals.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { uid } from "../../helpers/broker.ts";
import { waitFor } from "../../helpers/wait.ts";
import { DENIED_PREFIX, RESPONSE_INFORMATION, SERVER_TOPIC_ALIAS_MAXIMUM } from "./deployment.ts";
import { allProperties, assertAllProperties, type Case } from "./case_kit.ts";
import { awaitRoute, peer } from "./peer.ts";
import { PAHO_IGNORE, pahoUserProperties } from "./paho.ts";

/** [MQTT-3.3.2-8] [MQTT-3.3.2-11] [MQTT-3.3.2-12] */
export const topicAliases: Case = {
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
export const publishProperties: Case = {
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
export const userPropertyOrder: Case = {
  ignore: PAHO_IGNORE,
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
export const subscribeOptions: Case = {
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
export const sharedSubscriptions: Case = {
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

/** [MQTT-3.1.2-28] [MQTT-3.1.2-29] [MQTT-3.2.2-19] */
export const reasonCodes: Case = {
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
