import assert from "node:assert/strict";
import { defaultConfig, loadConfig } from "../../src/config/load.ts";
import { bridgeSettings, parseRule, RuleSet } from "../../src/bridge/kafka/settings.ts";
import { createKafkaBridge } from "../../src/bridge/kafka/mod.ts";
import { silentLogger } from "../../src/log.ts";
import { fakeFiles } from "../config/helpers.ts";

Deno.test("without rules everything goes to producer.topic, at-least-once", () => {
  const s = bridgeSettings(defaultConfig());
  assert.deepEqual(s.rules, [{ filter: "#", kafkaTopic: "mqtt_publish", mode: "at-least-once" }]);
  assert.equal(s.keyMode, "topic");
  assert.equal(s.format, "raw");
  assert.equal(s.idempotent, true);
  assert.equal(s.eventsTopic, null);
  assert.equal(s.ingress, null);
});

Deno.test("the producer runs on the broker's thread unless producer.thread is set", () => {
  assert.equal(bridgeSettings(defaultConfig()).producerThread, false);
  assert.equal(
    bridgeSettings({ ...defaultConfig(), kafkaProducerThread: true }).producerThread,
    true,
  );
});

Deno.test("a rule names a filter, a Kafka topic and optionally a mode", () => {
  assert.deepEqual(parseRule("sensors/+/temp -> telemetry", "at-least-once"), {
    filter: "sensors/+/temp",
    kafkaTopic: "telemetry",
    mode: "at-least-once",
  });
  assert.deepEqual(parseRule("  a/#->t.1   FIRE-AND-FORGET ", "at-least-once"), {
    filter: "a/#",
    kafkaTopic: "t.1",
    mode: "fire-and-forget",
  });
  assert.deepEqual(parseRule("private/# -> -", "fire-and-forget"), {
    filter: "private/#",
    kafkaTopic: null,
    mode: "fire-and-forget",
  });
});

Deno.test("malformed rules are refused with the rule and the expected form", () => {
  for (
    const [rule, why] of [
      ["a/b telemetry", "has no ->"],
      ["a/#/b -> t", "invalid MQTT topic filter"],
      ["a -> bad/topic", "invalid Kafka topic"],
      ["a -> t sometimes", "unknown mode"],
      ["a -> - at-least-once", "nothing is forwarded"],
      ["a -> ", "needs a Kafka topic"],
    ]
  ) {
    assert.throws(() => parseRule(rule, "at-least-once"), (e: Error) => {
      assert.match(e.message, /mqttwk\.broker\.kafka\.rules/);
      assert.ok(e.message.includes(why), `${e.message} should say ${why}`);
      assert.ok(e.message.includes(JSON.stringify(rule)));
      return true;
    });
  }
});

Deno.test("the first matching rule decides, and an unmatched topic is not forwarded", () => {
  const rules = new RuleSet([
    parseRule("private/# -> -", "at-least-once"),
    parseRule("sensors/+ -> telemetry fire-and-forget", "at-least-once"),
    parseRule("sensors/# -> sensors-all", "at-least-once"),
  ]);
  assert.equal(rules.match("private/x")?.kafkaTopic, null);
  assert.equal(rules.match("sensors/a")?.kafkaTopic, "telemetry");
  assert.equal(rules.match("sensors/a")?.mode, "fire-and-forget");
  assert.equal(rules.match("sensors/a/b")?.kafkaTopic, "sensors-all");
  assert.equal(rules.match("other"), null);
});

Deno.test("rules, ingress and the other bridge keys load from YAML", () => {
  const yaml = `
mqttwk:
  broker:
    kafka:
      broker-enabled: true
      rules:
        - "private/# -> -"
        - "# -> everything fire-and-forget"
      record:
        key: client-id
        format: mqttwk-json
      events:
        topic: mqtt_events
      buffer:
        max-messages: 10
        memory: 1MiB
      consumer:
        topics: [commands, "config-updates"]
        group:
          id: my-group
        auto:
          offset:
            reset: earliest
        mqtt-topic: "cmd/{key}/{partition}"
        topic-header: mqtt.topic
        qos: 2
        retain: true
`;
  const { config } = loadConfig({
    args: ["--config", "a.yaml"],
    env: {},
    readTextFile: fakeFiles({ "a.yaml": yaml }),
  });
  const s = bridgeSettings(config);
  assert.deepEqual(s.rules.map((r) => [r.filter, r.kafkaTopic, r.mode]), [
    ["private/#", null, "at-least-once"],
    ["#", "everything", "fire-and-forget"],
  ]);
  assert.equal(s.keyMode, "client-id");
  assert.equal(s.format, "mqttwk-json");
  assert.equal(s.eventsTopic, "mqtt_events");
  assert.equal(s.bufferMessages, 10);
  assert.equal(s.bufferBytes, 1048576);
  assert.deepEqual(s.ingress, {
    topics: ["commands", "config-updates"],
    groupId: "my-group",
    fromBeginning: true,
    mqttTopic: "cmd/{key}/{partition}",
    topicHeader: "mqtt.topic",
    qos: 2,
    retain: true,
  });
});

Deno.test("rules can be given as a comma-separated flag", () => {
  const { config } = loadConfig({
    args: ["--mqttwk.broker.kafka.rules=a/# -> ta, b/# -> tb fire-and-forget"],
    env: {},
    readTextFile: fakeFiles({}),
  });
  assert.deepEqual(bridgeSettings(config).rules.map((r) => r.kafkaTopic), ["ta", "tb"]);
});

Deno.test("idempotence is only used with acks -1", () => {
  const c = { ...defaultConfig(), kafkaAcks: 1 };
  assert.equal(bridgeSettings(c).idempotent, false);
});

Deno.test("an unknown placeholder in the ingress topic template is refused", () => {
  const c = {
    ...defaultConfig(),
    kafkaConsumerTopics: ["in"],
    kafkaConsumerMqttTopic: "kafka/{offset}",
  };
  assert.throws(() => bridgeSettings(c), /unknown placeholder \{offset\}/);
});

Deno.test("the bridge is not created when disabled, and bad settings stop it from being created", () => {
  assert.equal(createKafkaBridge(defaultConfig(), silentLogger), null);
  const bad = { ...defaultConfig(), kafkaEnabled: true, kafkaRules: ["nonsense"] };
  assert.throws(() => createKafkaBridge(bad, silentLogger), /mqttwk\.broker\.kafka\.rules/);
});
