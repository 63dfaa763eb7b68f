/**
 * Shared subscriptions end to end (MQTT 5.0 4.8.2): mosquitto_sub 3.1.1 and 5.0 and mqtt.js 5.0
 * in one group, `$queue/`, an invalid share name, Subscription Identifiers and Retain As Published
 * of members, and a group spread over two cluster nodes with one node killed.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { scoped, startBroker, uid } from "../helpers/broker.ts";
import { hostArgs, ignoreWithoutCli, mosquittoSub } from "../helpers/cli.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { REDIS_IGNORE, startRedis } from "../helpers/redis.ts";
import { waitFor } from "../helpers/wait.ts";
import { spawnNode } from "../cluster/nodes.ts";

function assertExactlyOnce(payloads: string[], n: number, label: string): void {
  const sorted = payloads.map(Number).sort((a, b) => a - b);
  assert.deepEqual(sorted, Array.from({ length: n }, (_, i) => i), `${label}: exactly once`);
}

Deno.test({
  name:
    "mosquitto_sub -V mqttv311, mosquitto_sub -V mqttv5 and mqtt.js 5.0 in one $share group: each message to exactly one, round robin [4.8.2]",
  ignore: ignoreWithoutCli(),
  fn: () =>
    scoped(async (defer) => {
      const broker = await startBroker();
      defer(() => broker.stop());
      const conn = hostArgs(broker.host, broker.port);
      const t = uid("share");
      const filter = `$share/workers/${t}/#`;
      const old = await mosquittoSub([...conn, "-V", "mqttv311", "-q", "1", "-t", filter]);
      defer(old.stop);
      const five = await mosquittoSub([...conn, "-V", "mqttv5", "-q", "1", "-t", filter]);
      defer(five.stop);
      const js = await connectMqttJs(broker.url, { protocolVersion: 5 });
      defer(js.close);
      assert.deepEqual(await js.subscribe(filter, 1), [1]);
      // A plain subscriber besides the group gets every message.
      const plain = await connectMqttJs(broker.url);
      defer(plain.close);
      await plain.subscribe(`${t}/#`, 1);
      const pub = await connectMqttJs(broker.url, { protocolVersion: 5 });
      defer(pub.close);
      for (let i = 0; i < 30; i++) await pub.publish(`${t}/job`, String(i), { qos: 1 });
      await plain.inbox.waitForCount(30);
      await waitFor(
        () => old.messages.length + five.messages.length + js.inbox.on().length === 30,
        { what: "30 deliveries to the group" },
      );
      const parts = [old.messages, five.messages, js.inbox.on()].map((l) =>
        l.map((m) => m.payload)
      );
      assertExactlyOnce(parts.flat(), 30, "group");
      assert.deepEqual(parts.map((p) => p.length), [10, 10, 10], "round robin over 3 members");
      for (const m of [...old.messages, ...five.messages]) assert.equal(m.topic, `${t}/job`);
    }),
});

Deno.test({
  name:
    "mqtt.js: $queue/ is one group across 3.1.1 and 5.0; an invalid share name gets SUBACK 0x8F (5.0) [MQTT-4.8.2-1]",
  fn: () =>
    scoped(async (defer) => {
      const broker = await startBroker({ args: ["--mqttwk.broker.persistence=memory"] });
      defer(() => broker.stop());
      const t = uid("queue");
      const a = await connectMqttJs(broker.url);
      defer(a.close);
      const b = await connectMqttJs(broker.url, { protocolVersion: 5 });
      defer(b.close);
      await a.subscribe(`$queue/${t}`, 2);
      await b.subscribe(`$queue/${t}`, 2);
      // mqtt.js turns SUBACK 0x8F into this error.
      await assert.rejects(
        b.client.subscribeAsync(`$share/${t}`, { qos: 1 }),
        /Topic Filter invalid/,
      );
      const pub = await connectMqttJs(broker.url);
      defer(pub.close);
      for (let i = 0; i < 10; i++) await pub.publish(t, String(i), { qos: 2 });
      await waitFor(() => a.inbox.on().length + b.inbox.on().length === 10, {
        what: "10 messages",
      });
      assertExactlyOnce([...a.inbox.on(), ...b.inbox.on()].map((m) => m.payload), 10, "$queue");
      assert.deepEqual([a.inbox.on().length, b.inbox.on().length], [5, 5]);
    }),
});

Deno.test({
  name:
    "mqtt.js 5.0 members of one $share group each get their own Subscription Identifier, and RETAIN as their Retain As Published says [MQTT-3.3.4-3] [MQTT-3.3.1-12]",
  fn: () =>
    scoped(async (defer) => {
      const broker = await startBroker({ args: ["--mqttwk.broker.persistence=memory"] });
      defer(() => broker.stop());
      const t = uid("shareid");
      const filter = `$share/ids/${t}`;
      const got: { member: string; payload: string; retain: boolean; ids: unknown }[] = [];
      for (const [member, subscriptionIdentifier, rap] of [["a", 11, true], ["b", 12, false]]) {
        const c = await mqtt.connectAsync(broker.url, {
          protocolVersion: 5,
          clientId: `${t}-${member}`,
          reconnectPeriod: 0,
        });
        defer(() => c.endAsync());
        c.on("message", (_t, payload, packet) =>
          got.push({
            member: member as string,
            payload: payload.toString(),
            retain: packet.retain,
            ids: packet.properties?.subscriptionIdentifier,
          }));
        await c.subscribeAsync(filter, {
          qos: 1,
          rap: rap as boolean,
          properties: { subscriptionIdentifier: subscriptionIdentifier as number },
        });
      }
      const pub = await connectMqttJs(broker.url);
      defer(pub.close);
      for (let i = 0; i < 4; i++) await pub.publish(t, String(i), { qos: 1, retain: true });
      await waitFor(() => got.length === 4, {
        what: "4 deliveries to the group",
        detail: () => JSON.stringify(got),
      });
      assertExactlyOnce(got.map((m) => m.payload), 4, "group");
      for (const m of got) {
        assert.deepEqual(
          [m.ids, m.retain],
          m.member === "a" ? [11, true] : [12, false],
          JSON.stringify(m),
        );
      }
      assert.deepEqual(got.filter((m) => m.member === "a").length, 2, "round robin");
    }),
});

Deno.test({
  name:
    "shared group spread over two nodes with one node killed: the surviving node's member keeps receiving, nothing acknowledged is lost",
  ignore: REDIS_IGNORE,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    scoped(async (defer) => {
      const r = await startRedis();
      defer(() => r.kill());
      const args = [`--redis.port=${r.port}`];
      const [n1, n2] = await Promise.all([spawnNode("n1", args), spawnNode("n2", args)]);
      defer(() => n1.kill());
      defer(() => n2.kill());
      const t = uid("spread");
      const filter = `$share/g/${t}/#`;
      const onSurvivor = await connectMqttJs(n1.url, { protocolVersion: 5 });
      defer(onSurvivor.close);
      await onSurvivor.subscribe(filter, 1);
      const onVictim = await connectMqttJs(n2.url);
      defer(() => onVictim.client.end(true));
      await onVictim.subscribe(filter, 1);
      const pub = await connectMqttJs(n1.url);
      defer(pub.close);
      const all = () => [...onSurvivor.inbox.on(), ...onVictim.inbox.on()].map((m) => m.payload);
      // Until n1 knows n2's member, everything stays on n1: wait until n2's member gets one.
      let n = 0;
      await waitFor(async () => {
        await pub.publish(`${t}/m`, String(n++), { qos: 1 });
        return onVictim.inbox.on().length > 0;
      }, { what: "n1 to route the group to n2", interval: 20 });
      const acked: string[] = [];
      for (let i = 0; i < n; i++) acked.push(String(i));
      // Traffic while n2 dies: every message n1 acknowledged must reach a member.
      const publishing = (async () => {
        for (let i = 0; i < 300; i++) {
          await pub.publish(`${t}/m`, String(n), { qos: 1 });
          acked.push(String(n++));
        }
      })();
      await waitFor(() => acked.length > n / 2 + 50, { what: "traffic before the kill" });
      await n2.kill();
      await publishing;
      const afterKill = onSurvivor.inbox.on().length;
      // Once n2 is taken over, n1's member gets every new message.
      await n1.waitForLog(/took over node n2/, 20_000);
      for (let i = 0; i < 20; i++) {
        await pub.publish(`${t}/m`, String(n), { qos: 1 });
        acked.push(String(n++));
      }
      await waitFor(() => acked.every((p) => all().includes(p)), {
        what: "every acknowledged message at a member",
        timeout: 20_000,
        detail: () => `missing ${acked.filter((p) => !all().includes(p)).join(",")}`,
      });
      assert.ok(onSurvivor.inbox.on().length > afterKill, "the survivor's member kept receiving");
      const survivor = onSurvivor.inbox.on().map((m) => m.payload);
      assert.equal(new Set(survivor).size, survivor.length, "no duplicate at the survivor");
    }),
});
