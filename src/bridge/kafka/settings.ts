/**
 * Turns the flat mqttwk.broker.kafka.* configuration into the bridge's settings. Egress rules are
 * plain strings so that they fit the schema's list type and stay one line each in YAML, env vars
 * and flags:
 *
 *   "<mqtt filter> -> <kafka topic> [at-least-once|fire-and-forget]"
 *   "<mqtt filter> -> -"        (matching messages are not forwarded)
 *
 * The first rule whose filter matches a message decides; no rule matching means not forwarded.
 */
import { isValidFilter, topicMatches } from "../../broker/topic.ts";
import type { Config } from "../../config/load.ts";

export type DeliveryMode = "at-least-once" | "fire-and-forget";
export type KeyMode = "topic" | "client-id" | "none";
export type RecordFormat = "raw" | "mqttwk-json";

export interface Rule {
  filter: string;
  /** null: matching messages are not forwarded. */
  kafkaTopic: string | null;
  mode: DeliveryMode;
}

export interface IngressSettings {
  topics: string[];
  groupId: string;
  fromBeginning: boolean;
  /** Template with {topic}, {key} and {partition}. */
  mqttTopic: string;
  /** Record header whose value, when present, is the MQTT topic (instead of the template). */
  topicHeader: string;
  qos: 0 | 1 | 2;
  retain: boolean;
}

export interface BridgeSettings {
  brokers: string[];
  brokerId: string;
  acks: -1 | 0 | 1;
  idempotent: boolean;
  retries: number;
  /** Whether the producer runs on its own thread (producer_worker.ts) or the broker's. */
  producerThread: boolean;
  lingerMs: number;
  /** Pending bytes that trigger a send without waiting for the linger. */
  batchBytes: number;
  /** Upper bound of one produce request. */
  maxRequestBytes: number;
  bufferMessages: number;
  bufferBytes: number;
  backoffMs: number;
  backoffMaxMs: number;
  rules: Rule[];
  keyMode: KeyMode;
  format: RecordFormat;
  /** Kafka topic for client lifecycle events; null = not sent. */
  eventsTopic: string | null;
  /** null: ingress is off. */
  ingress: IngressSettings | null;
}

const KAFKA_TOPIC = /^[a-zA-Z0-9._-]{1,249}$/;
const MODES: readonly DeliveryMode[] = ["at-least-once", "fire-and-forget"];

/** Throws an Error naming the offending key when the Kafka settings cannot work. */
export function bridgeSettings(c: Config): BridgeSettings {
  const brokers = c.kafkaBootstrapServers.split(",").map((s) => s.trim()).filter(Boolean);
  if (brokers.length === 0) {
    throw new Error("mqttwk.broker.kafka.bootstrap.servers: no Kafka server given");
  }
  const rules = c.kafkaRules.length === 0
    ? [{
      filter: "#",
      kafkaTopic: checkTopic(c.kafkaProducerTopic, "producer.topic"),
      mode: c.kafkaDelivery,
    }]
    : c.kafkaRules.map((r) => parseRule(r, c.kafkaDelivery));
  const eventsTopic = c.kafkaEventsTopic === ""
    ? null
    : checkTopic(c.kafkaEventsTopic, "events.topic");
  return {
    brokers,
    brokerId: c.brokerId,
    acks: c.kafkaAcks as -1 | 0 | 1,
    // Kafka's own producer refuses idempotence without acks=all; a migrated file with acks 1 should
    // still start, so idempotence quietly follows acks.
    idempotent: c.kafkaEnableIdempotence && c.kafkaAcks === -1,
    retries: c.kafkaRetries,
    producerThread: c.kafkaProducerThread,
    lingerMs: c.kafkaLingerMs,
    batchBytes: Math.max(1, c.kafkaBatchSize),
    maxRequestBytes: c.kafkaMaxRequestSize,
    bufferMessages: c.kafkaBufferMaxMessages,
    bufferBytes: c.kafkaBufferMemory,
    backoffMs: c.kafkaReconnectBackoffMs,
    backoffMaxMs: Math.max(c.kafkaReconnectBackoffMs, c.kafkaReconnectBackoffMaxMs),
    rules,
    keyMode: c.kafkaRecordKey,
    format: c.kafkaRecordFormat,
    eventsTopic,
    ingress: ingressSettings(c),
  };
}

function ingressSettings(c: Config): IngressSettings | null {
  if (c.kafkaConsumerTopics.length === 0) return null;
  for (const t of c.kafkaConsumerTopics) checkTopic(t, "consumer.topics");
  if (c.kafkaConsumerGroupId.trim() === "") {
    throw new Error("mqttwk.broker.kafka.consumer.group.id must not be empty");
  }
  if (c.kafkaConsumerMqttTopic === "") {
    throw new Error("mqttwk.broker.kafka.consumer.mqtt-topic must not be empty");
  }
  const unknown = /\{(?!topic\}|key\}|partition\})[^}]*\}/.exec(c.kafkaConsumerMqttTopic);
  if (unknown) {
    throw new Error(
      `mqttwk.broker.kafka.consumer.mqtt-topic: unknown placeholder ${unknown[0]} ` +
        `(use {topic}, {key}, {partition})`,
    );
  }
  return {
    topics: [...c.kafkaConsumerTopics],
    groupId: c.kafkaConsumerGroupId,
    fromBeginning: c.kafkaConsumerAutoOffsetReset === "earliest",
    mqttTopic: c.kafkaConsumerMqttTopic,
    topicHeader: c.kafkaConsumerTopicHeader,
    qos: c.kafkaConsumerQos as 0 | 1 | 2,
    retain: c.kafkaConsumerRetain,
  };
}

function isKafkaTopic(topic: string): boolean {
  return KAFKA_TOPIC.test(topic) && topic !== "." && topic !== "..";
}

function checkTopic(topic: string, key: string): string {
  if (!isKafkaTopic(topic)) {
    throw new Error(
      `mqttwk.broker.kafka.${key}: ${JSON.stringify(topic)} is not a valid Kafka topic ` +
        `(letters, digits, ".", "_", "-"; at most 249)`,
    );
  }
  return topic;
}

export function parseRule(text: string, defaultMode: DeliveryMode): Rule {
  const bad = (why: string) =>
    new Error(
      `mqttwk.broker.kafka.rules: ${JSON.stringify(text)} ${why}; expected ` +
        `"<mqtt filter> -> <kafka topic> [at-least-once|fire-and-forget]" or "<mqtt filter> -> -"`,
    );
  const arrow = text.lastIndexOf("->");
  if (arrow === -1) throw bad("has no ->");
  const filter = text.slice(0, arrow).trim();
  const rest = text.slice(arrow + 2).trim().split(/\s+/).filter(Boolean);
  if (!isValidFilter(filter)) {
    throw bad(`has an invalid MQTT topic filter ${JSON.stringify(filter)}`);
  }
  if (rest.length === 0 || rest.length > 2) throw bad("needs a Kafka topic and at most a mode");
  if (rest[0] === "-") {
    if (rest.length > 1) throw bad("has a mode although nothing is forwarded");
    return { filter, kafkaTopic: null, mode: defaultMode };
  }
  const mode = rest[1]?.toLowerCase() ?? defaultMode;
  if (!MODES.includes(mode as DeliveryMode)) {
    throw bad(`has an unknown mode ${JSON.stringify(rest[1])}`);
  }
  if (!isKafkaTopic(rest[0])) {
    throw bad(
      `has an invalid Kafka topic ${JSON.stringify(rest[0])} (letters, digits, ".", "_", "-")`,
    );
  }
  return { filter, kafkaTopic: rest[0], mode: mode as DeliveryMode };
}

/** First-match rule lookup, memoised per topic because it runs for every publish. */
export class RuleSet {
  readonly #rules: readonly Rule[];
  readonly #cache = new Map<string, Rule | null>();

  constructor(rules: readonly Rule[]) {
    this.#rules = rules;
  }

  /** The last topic asked about: publishers send bursts on one topic. */
  #lastTopic = "";
  #lastRule: Rule | null = null;

  match(topic: string): Rule | null {
    if (topic === this.#lastTopic) return this.#lastRule;
    const r = this.#lookup(topic);
    this.#lastTopic = topic;
    this.#lastRule = r;
    return r;
  }

  #lookup(topic: string): Rule | null {
    let r = this.#cache.get(topic);
    if (r !== undefined) return r;
    r = this.#rules.find((x) => topicMatches(x.filter, topic)) ?? null;
    // Topics with ids in them (devices/<id>/...) are unbounded: start over rather than grow.
    if (this.#cache.size >= 10_000) this.#cache.clear();
    this.#cache.set(topic, r);
    return r;
  }
}
