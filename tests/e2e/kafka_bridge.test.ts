/**
 * The Kafka bridge against a real Apache Kafka (one per file; see tests/helpers/kafka.ts): what
 * records look like, where they go, client events, two nodes, and ingress with offset commits.
 */
import assert from "node:assert/strict";
import { type Defer, scoped } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { waitFor } from "../helpers/wait.ts";
import {
  committedOffsets,
  createTopic,
  KafkaReader,
  type KafkaServer,
  kafkaTopic,
  produce,
  scopedBridgeBroker,
  startTestKafka,
} from "../helpers/kafka.ts";
import { defaultConfig } from "../../src/config/load.ts";
import { createKafkaBridge } from "../../src/bridge/kafka/mod.ts";
import type { StoredMessage } from "../../src/broker/model.ts";
import { silentLogger } from "../../src/log.ts";

const bridgeBroker = scopedBridgeBroker;

async function reader(kafka: KafkaServer, defer: Defer, ...topics: string[]) {
  const r = await KafkaReader.open(kafka.bootstrap, topics);
  defer(() => r.close());
  return r;
}

Deno.test({
  name: "the Kafka bridge against a real Kafka",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const kafka = await startTestKafka();
    if (!kafka) return;
    try {
      await t.step(
        "raw records carry the payload, the MQTT topic as key and the metadata as headers",
        () =>
          scoped(async (defer) => {
            const topic = kafkaTopic("raw");
            await createTopic(kafka.bootstrap, topic);
            const b = await bridgeBroker(kafka, defer, { "producer.topic": topic }, [
              "--node-id=node-a",
            ]);
            const c = await connectMqttJs(b.url, { clientId: "raw-pub" });
            defer(c.close);
            const before = Date.now();
            await c.publish("dev/1/bin", new Uint8Array([0, 1, 128, 255]), { qos: 1 });
            await c.publish("dev/1/state", "on", { qos: 1, retain: true });
            await c.publish("dev/1/q0", "zero", { qos: 0 });
            await c.publish("dev/1/q2", "two", { qos: 2 });
            const r = await reader(kafka, defer, topic);
            const recs = await r.waitForCount(4);
            const by = new Map(recs.map((x) => [x.key, x]));

            const bin = by.get("dev/1/bin")!;
            assert.deepEqual([...bin.value], [0, 1, 128, 255]);
            assert.equal(bin.headers["mqtt.topic"], "dev/1/bin");
            assert.equal(bin.headers["mqtt.qos"], "1");
            assert.equal(bin.headers["mqtt.retain"], "false");
            assert.equal(bin.headers["mqtt.client_id"], "raw-pub");
            assert.equal(bin.headers["mqttwk.node_id"], "node-a");
            assert.match(bin.headers["mqttwk.message_id"], /^node-a-/);
            const ts = Number(bin.headers["mqttwk.timestamp"]);
            assert.ok(ts >= before - 5 && ts <= Date.now(), `timestamp ${ts}`);
            assert.equal(bin.timestamp, bin.headers["mqttwk.timestamp"]);

            const retained = by.get("dev/1/state")!;
            assert.equal(retained.value.toString(), "on");
            assert.equal(retained.headers["mqtt.retain"], "true");
            assert.equal(by.get("dev/1/q0")!.headers["mqtt.qos"], "0");
            assert.equal(by.get("dev/1/q2")!.headers["mqtt.qos"], "2");
          }),
      );

      await t.step(
        "records of one MQTT topic share a partition, many topics spread out",
        () =>
          scoped(async (defer) => {
            const topic = kafkaTopic("part");
            await createTopic(kafka.bootstrap, topic);
            const b = await bridgeBroker(kafka, defer, { "producer.topic": topic });
            const c = await connectMqttJs(b.url);
            defer(c.close);
            for (let i = 0; i < 10; i++) await c.publish("same/topic", `s${i}`, { qos: 1 });
            for (let i = 0; i < 30; i++) await c.publish(`many/${i}`, `m${i}`, { qos: 1 });
            const r = await reader(kafka, defer, topic);
            const recs = await r.waitForCount(40);
            const same = recs.filter((x) => x.key === "same/topic");
            assert.equal(new Set(same.map((x) => x.partition)).size, 1);
            assert.deepEqual(
              same.sort((a, b) => Number(a.offset) - Number(b.offset)).map((x) =>
                x.value.toString()
              ),
              [...Array(10).keys()].map((i) => `s${i}`),
              "in publish order",
            );
            const many = recs.filter((x) => x.key?.startsWith("many/"));
            assert.equal(new Set(many.map((x) => x.partition)).size, 3);
          }),
      );

      await t.step(
        "with key client-id the publisher's client id is the key",
        () =>
          scoped(async (defer) => {
            const topic = kafkaTopic("cid");
            await createTopic(kafka.bootstrap, topic);
            const b = await bridgeBroker(kafka, defer, {
              "producer.topic": topic,
              "record.key": "client-id",
            });
            const c1 = await connectMqttJs(b.url, { clientId: "client-one" });
            defer(c1.close);
            const c2 = await connectMqttJs(b.url, { clientId: "client-two" });
            defer(c2.close);
            for (let i = 0; i < 5; i++) {
              await c1.publish(`x/${i}`, "1", { qos: 1 });
              await c2.publish(`y/${i}`, "2", { qos: 1 });
            }
            const r = await reader(kafka, defer, topic);
            const recs = await r.waitForCount(10);
            const one = recs.filter((x) => x.value.toString() === "1");
            assert.ok(one.every((x) => x.key === "client-one"));
            assert.equal(new Set(one.map((x) => x.partition)).size, 1);
            assert.ok(
              recs.filter((x) => x.value.toString() === "2").every((x) => x.key === "client-two"),
            );
          }),
      );

      await t.step(
        "with key none records have no key and spread over partitions",
        () =>
          scoped(async (defer) => {
            const topic = kafkaTopic("nokey");
            await createTopic(kafka.bootstrap, topic);
            const b = await bridgeBroker(kafka, defer, {
              "producer.topic": topic,
              "record.key": "none",
            });
            const c = await connectMqttJs(b.url);
            defer(c.close);
            for (let i = 0; i < 12; i++) await c.publish("one/topic", `n${i}`, { qos: 1 });
            const r = await reader(kafka, defer, topic);
            const recs = await r.waitForCount(12);
            assert.ok(recs.every((x) => x.key === null));
            assert.ok(new Set(recs.map((x) => x.partition)).size > 1);
          }),
      );

      await t.step(
        "the mqttwk-json format is the original broker's record",
        () =>
          scoped(async (defer) => {
            const topic = kafkaTopic("json");
            await createTopic(kafka.bootstrap, topic);
            const b = await bridgeBroker(kafka, defer, {
              "producer.topic": topic,
              "record.format": "mqttwk-json",
            });
            const c = await connectMqttJs(b.url, { clientId: "pc-web" });
            defer(c.close);
            await c.publish("/topic/mqttwk", "hello", { qos: 0 });
            await c.publish("/topic/bytes", new Uint8Array([0x80, 0xff, 0x7f]), {
              qos: 1,
              retain: true,
            });
            const r = await reader(kafka, defer, topic);
            const recs = await r.waitForCount(2);
            const hello = recs.find((x) => x.key === "/topic/mqttwk")!;
            const pid = JSON.parse(hello.value.toString()).processId;
            assert.match(pid, /^\d+$/);
            assert.equal(
              hello.value.toString(),
              `{"brokerId":"mqttwk","clientId":"pc-web","dup":false,` +
                `"messageBytes":[104,101,108,108,111],"mqttQoS":0,"processId":"${pid}",` +
                `"retain":false,"topic":"/topic/mqttwk"}`,
            );
            const bytes = JSON.parse(recs.find((x) => x.key === "/topic/bytes")!.value.toString());
            assert.deepEqual(bytes.messageBytes, [-128, -1, 127]);
            assert.equal(bytes.retain, true);
            assert.equal(bytes.mqttQoS, 1);
            assert.equal(hello.headers["mqtt.client_id"], "pc-web");
          }),
      );

      await t.step(
        "rules choose the Kafka topic, and '-' keeps messages out of Kafka",
        () =>
          scoped(async (defer) => {
            const tel = kafkaTopic("tel");
            const rest = kafkaTopic("rest");
            await createTopic(kafka.bootstrap, tel);
            await createTopic(kafka.bootstrap, rest);
            const b = await bridgeBroker(kafka, defer, {
              rules: `private/# -> -, sensors/+/temp -> ${tel} fire-and-forget, # -> ${rest}`,
            });
            const c = await connectMqttJs(b.url);
            defer(c.close);
            await c.publish("private/secret", "p", { qos: 1 });
            await c.publish("sensors/k1/temp", "21", { qos: 1 });
            await c.publish("other/thing", "o", { qos: 1 });
            await c.publish("last", "end", { qos: 1 });
            const r = await reader(kafka, defer, tel, rest);
            await r.waitForCount(3);
            // Fixed on purpose: "p" must not show up, and Kafka orders nothing across topics.
            await new Promise((res) => setTimeout(res, 500));
            assert.deepEqual(r.values((x) => x.topic === tel), ["21"]);
            assert.deepEqual(r.values((x) => x.topic === rest).sort(), ["end", "o"]);
            assert.ok(!r.values().includes("p"));
          }),
      );

      await t.step("client events go to their own topic", () =>
        scoped(async (defer) => {
          const events = kafkaTopic("events");
          await createTopic(kafka.bootstrap, events);
          const b = await bridgeBroker(kafka, defer, {
            "producer.topic": kafkaTopic("unused"),
            "events.topic": events,
          });
          const c = await connectMqttJs(b.url, { clientId: "watched" });
          await c.subscribe("a/#", 1);
          await c.client.unsubscribeAsync("a/#");
          await c.close();
          const r = await reader(kafka, defer, events);
          const recs = await r.waitForCount(4);
          assert.ok(recs.every((x) => x.key === "watched"));
          // One key, one partition: the order is the order things happened.
          const seq = recs.map((x) => JSON.parse(x.value.toString()));
          assert.deepEqual(seq.map((e) => e.event), [
            "connected",
            "subscribed",
            "unsubscribed",
            "disconnected",
          ]);
          assert.equal(seq[1].filter, "a/#");
          assert.equal(seq[1].qos, 1);
          assert.ok(seq.every((e) => e.clientId === "watched"));
        }));

      await t.step(
        "two nodes each produce their own clients' messages, each exactly once",
        () =>
          scoped(async (defer) => {
            const topic = kafkaTopic("two");
            await createTopic(kafka.bootstrap, topic);
            const a = await bridgeBroker(kafka, defer, { "producer.topic": topic }, [
              "--node-id=node-a",
            ]);
            const b = await bridgeBroker(kafka, defer, { "producer.topic": topic }, [
              "--node-id=node-b",
            ]);
            const ca = await connectMqttJs(a.url);
            defer(ca.close);
            const cb = await connectMqttJs(b.url);
            defer(cb.close);
            // Subscribers on both nodes: local delivery must not make a node produce twice.
            await ca.subscribe("shared/#", 1);
            await cb.subscribe("shared/#", 1);
            const sent: string[] = [];
            for (let i = 0; i < 20; i++) {
              sent.push(`a${i}`, `b${i}`);
              await ca.publish(`shared/${i}`, `a${i}`, { qos: 1 });
              await cb.publish(`shared/${i}`, `b${i}`, { qos: 1 });
            }
            const r = await reader(kafka, defer, topic);
            await r.waitForCount(40);
            // Fixed on purpose: no node may produce a record twice, later or not.
            await new Promise((res) => setTimeout(res, 1000));
            assert.deepEqual(r.values().sort(), sent.sort());
            for (const x of r.records) {
              const node = x.value.toString().startsWith("a") ? "node-a" : "node-b";
              assert.equal(x.headers["mqttwk.node_id"], node);
            }
          }),
      );

      await t.step(
        "ingress publishes records into MQTT and commits them",
        () =>
          scoped(async (defer) => {
            const input = kafkaTopic("in");
            const group = kafkaTopic("group");
            await createTopic(kafka.bootstrap, input);
            const settings = {
              "consumer.topics": input,
              "consumer.group.id": group,
              "consumer.topic-header": "mqtt.topic",
              "consumer.qos": 1,
              "consumer.retain": true,
              rules: "# -> -",
            };
            let b = await bridgeBroker(kafka, (c) => c, settings);
            await b.waitForLog(/kafka ingress joined group/, 30_000);
            const sub = await connectMqttJs(b.url);
            await sub.subscribe("#", 1);
            await produce(kafka.bootstrap, input, [
              { key: "k1", value: "one" },
              { key: "k2", value: "two" },
              { key: null, value: "nokey" },
              { key: "x", value: "header", headers: { "mqtt.topic": "custom/place" } },
              { key: "bad/+/key", value: "skipped" },
            ]);
            const got = await sub.inbox.waitForCount(4, () => true, 20_000);
            const topics = new Map(got.map((m) => [m.payload, m]));
            assert.equal(topics.get("one")!.topic, `kafka/${input}/k1`);
            assert.equal(topics.get("two")!.topic, `kafka/${input}/k2`);
            assert.equal(topics.get("nokey")!.topic, `kafka/${input}/`);
            assert.equal(topics.get("header")!.topic, "custom/place");
            assert.ok(got.every((m) => m.qos === 1));
            await b.waitForLog(/kafka ingress skipped .*bad\/\+\/key/);
            await sub.close();
            // consumer.retain: a later subscriber still finds each topic's last record.
            const later = await connectMqttJs(b.url);
            await later.subscribe(`kafka/${input}/k1`, 1);
            const kept = await later.inbox.waitFor((x) => x.payload === "one");
            assert.equal(kept.retain, true);
            await later.close();

            // All five are committed, the skipped one too (retrying could never succeed).
            let seen = 0;
            const committed = await waitFor(async () => {
              const offs = await committedOffsets(kafka.bootstrap, group, input);
              seen = [...offs.values()].reduce((s, o) => s + Math.max(0, Number(o)), 0);
              return seen >= 5 && seen;
            }, {
              what: "5 committed offsets",
              interval: 100,
              detail: () => `${seen} committed`,
            });
            assert.equal(committed, 5);
            assert.equal(await b.stop(), 0);

            // A new process in the same group gets only what came after.
            b = await bridgeBroker(kafka, defer, settings);
            await b.waitForLog(/kafka ingress joined group/, 30_000);
            const late = await connectMqttJs(b.url);
            defer(late.close);
            await late.subscribe(`kafka/${input}/+`, 1);
            await produce(kafka.bootstrap, input, [{ key: "k3", value: "after" }]);
            const m = await late.inbox.waitFor((x) => x.payload === "after", 20_000);
            assert.equal(m.topic, `kafka/${input}/k3`);
            // Fixed on purpose: a redelivery would come from another partition, in no order.
            await new Promise((res) => setTimeout(res, 500));
            assert.deepEqual(
              late.inbox.messages.map((x) => x.payload),
              ["after"],
              "nothing committed before is delivered again",
            );
          }),
      );

      await t.step(
        "a record the broker did not accept is not committed and comes again",
        async () => {
          const input = kafkaTopic("refuse");
          const group = kafkaTopic("group");
          await createTopic(kafka.bootstrap, input, 1);
          await produce(kafka.bootstrap, input, [
            { key: "a", value: "ok-1" },
            { key: "b", value: "refuse-me" },
            { key: "c", value: "ok-2" },
          ]);
          const config = {
            ...defaultConfig(),
            kafkaEnabled: true,
            kafkaBootstrapServers: kafka.bootstrap,
            kafkaRules: ["# -> -"],
            kafkaConsumerTopics: [input],
            kafkaConsumerGroupId: group,
            kafkaConsumerAutoOffsetReset: "earliest" as const,
            kafkaReconnectBackoffMaxMs: 200,
          };
          const host = (accept: (m: StoredMessage) => boolean, seen: string[]) => ({
            nodeId: "test-node",
            publish(m: StoredMessage) {
              const text = new TextDecoder().decode(m.payload);
              seen.push(text);
              if (!accept(m)) throw new Error(`broker closing, ${text} not accepted`);
            },
            commitBarrier: () => null,
            isValidTopicName: () => true,
          });

          const first: string[] = [];
          const bridge1 = createKafkaBridge(config, silentLogger)!;
          await bridge1.start(
            host((m) => new TextDecoder().decode(m.payload) !== "refuse-me", first),
          );
          try {
            await waitFor(() => bridge1.stats().ingress!.refused >= 2, {
              what: "the refused record to be retried",
              timeout: 30_000,
              interval: 50,
            });
          } finally {
            await bridge1.stop();
          }
          assert.deepEqual(first.slice(0, 2), ["ok-1", "refuse-me"]);
          assert.ok(!first.includes("ok-2"), "nothing after the refused record is taken");
          assert.ok(bridge1.stats().ingress!.refused >= 2, "the refused record was retried");
          const offs = await committedOffsets(kafka.bootstrap, group, input);
          assert.equal(offs.get(0), "1", "only the accepted record is committed");

          const second: string[] = [];
          const bridge2 = createKafkaBridge(config, silentLogger)!;
          await bridge2.start(host(() => true, second));
          try {
            await waitFor(() => second.length >= 2, {
              what: "2 records in the second run",
              timeout: 30_000,
              interval: 50,
              detail: () => JSON.stringify(second),
            });
            // Fixed on purpose: nothing more may come after the two.
            await new Promise((r) => setTimeout(r, 300));
          } finally {
            await bridge2.stop();
          }
          assert.deepEqual(second, ["refuse-me", "ok-2"]);
          assert.equal(bridge2.stats().ingress!.published, 2);
          assert.equal((await committedOffsets(kafka.bootstrap, group, input)).get(0), "3");
        },
      );
    } finally {
      await kafka.close();
    }
  },
});
