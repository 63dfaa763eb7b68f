/**
 * The Kafka bridge and MQTT 5.0 properties, against a real Apache Kafka (tests/helpers/kafka.ts):
 * a 5.0 message's properties become record headers (src/bridge/kafka/properties.ts), a 3.1.1
 * message's record keeps its old headers, and ingress sets properties from headers for a 5.0
 * subscriber (mqtt.js, protocolVersion 5) while a 3.1.1 subscriber gets the plain message.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { IPublishPacket } from "mqtt";
import { scoped } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import {
  createTopic,
  KafkaReader,
  kafkaTopic,
  produce,
  scopedBridgeBroker,
  startTestKafka,
} from "../helpers/kafka.ts";

const bridgeBroker = scopedBridgeBroker;

const FIXED = [
  "mqtt.topic",
  "mqtt.qos",
  "mqtt.retain",
  "mqtt.client_id",
  "mqttwk.node_id",
  "mqttwk.timestamp",
  "mqttwk.message_id",
];

Deno.test({
  name: "the Kafka bridge carries MQTT 5.0 properties both ways, against a real Kafka",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const kafka = await startTestKafka();
    if (!kafka) return;
    try {
      await t.step(
        "egress: a 5.0 will's properties become headers [MQTT-3.3.2-18]; a 3.1.1 record is unchanged",
        () =>
          scoped(async (defer) => {
            const topic = kafkaTopic("m5out");
            await createTopic(kafka.bootstrap, topic);
            const b = await bridgeBroker(kafka, defer, { "producer.topic": topic });
            const old = await connectMqttJs(b.url, { clientId: "old-pub" });
            defer(old.close);
            await old.publish("plain/311", "old", { qos: 1 });
            // The will is the broker's own way (today) to give a message a publisher's properties.
            const dying = await connectMqttJs(b.url, {
              protocolVersion: 5,
              clientId: "m5-dying",
              will: {
                topic: "will/m5",
                payload: Buffer.from("bye"),
                qos: 1,
                retain: false,
                properties: {
                  payloadFormatIndicator: true,
                  messageExpiryInterval: 90,
                  contentType: "text/plain",
                  responseTopic: "reply/m5",
                  correlationData: Buffer.from([0, 1, 254, 255]),
                  userProperties: { region: ["eu", "us"], trace: "t-1" },
                },
              },
            });
            dying.client.stream.destroy();
            const r = await KafkaReader.open(kafka.bootstrap, [topic]);
            defer(() => r.close());
            const [plain] = await r.waitForCount(1, (x) => x.key === "plain/311");
            assert.deepEqual(Object.keys(plain.rawHeaders), FIXED, "3.1.1: the headers of before");
            const [w] = await r.waitForCount(1, (x) => x.key === "will/m5");
            assert.equal(w.value.toString(), "bye");
            const h = w.rawHeaders;
            assert.equal(String(h["mqtt.payload_format_indicator"]), "1");
            assert.equal(String(h["mqtt.message_expiry_interval"]), "90");
            assert.equal(String(h["mqtt.content_type"]), "text/plain");
            assert.equal(String(h["mqtt.response_topic"]), "reply/m5");
            assert.deepEqual([...h["mqtt.correlation_data"] as Buffer], [0, 1, 254, 255]);
            const region = h["mqtt.user.region"] as Buffer[];
            assert.deepEqual(region.map(String), ["eu", "us"], "a repeated name: both, in order");
            assert.equal(String(h["mqtt.user.trace"]), "t-1");
            assert.equal(h["mqtt.will_delay_interval"], undefined);
          }),
      );

      await t.step(
        "ingress: headers set a message's 5.0 properties; a 3.1.1 subscriber gets the message",
        () =>
          scoped(async (defer) => {
            const input = kafkaTopic("m5in");
            await createTopic(kafka.bootstrap, input);
            const b = await bridgeBroker(kafka, defer, {
              "consumer.topics": input,
              "consumer.group.id": kafkaTopic("m5group"),
              "consumer.topic-header": "mqtt.topic",
              "consumer.qos": 1,
              rules: "# -> -",
            });
            await b.waitForLog(/kafka ingress joined group/, 30_000);
            const v5 = await connectMqttJs(b.url, { protocolVersion: 5, clientId: "m5-sub" });
            defer(v5.close);
            const got: IPublishPacket[] = [];
            v5.client.on("message", (_t, _p, packet) => got.push(packet));
            await v5.subscribe("in/#", 1);
            const old = await connectMqttJs(b.url, { clientId: "old-sub" });
            defer(old.close);
            await old.subscribe("in/#", 1);
            await produce(kafka.bootstrap, input, [{
              key: "k",
              value: "hello",
              headers: {
                "mqtt.topic": "in/props",
                "mqtt.user.a": ["1", "2"],
                "mqtt.user.b": "3",
                "mqtt.content_type": "text/plain",
                "mqtt.response_topic": "reply/in",
                "mqtt.correlation_data": Buffer.from([9, 0, 255]),
                "mqtt.payload_format_indicator": "1",
                "mqtt.message_expiry_interval": "600",
              },
            }]);
            const m = await old.inbox.waitFor((x) => x.topic === "in/props", 20_000);
            assert.equal(m.payload, "hello");
            const deadline = Date.now() + 10_000;
            while (got.length === 0 && Date.now() < deadline) {
              await new Promise((r) => setTimeout(r, 20));
            }
            const p = got[0]?.properties;
            assert.ok(p, "the 5.0 subscriber got the message with properties");
            assert.deepEqual({ ...p.userProperties }, { a: ["1", "2"], b: "3" });
            assert.equal(p.contentType, "text/plain");
            assert.equal(p.responseTopic, "reply/in");
            assert.deepEqual([...p.correlationData!], [9, 0, 255]);
            assert.equal(p.payloadFormatIndicator, true);
            assert.ok(p.messageExpiryInterval! > 0 && p.messageExpiryInterval! <= 600);
          }),
      );
    } finally {
      await kafka.close();
    }
  },
});
