/**
 * A real Apache Kafka for the bridge tests (see scripts/kafka/launcher.ts), plus small kafkajs
 * helpers to create topics, produce and read records.
 *
 * With CI=true a Kafka that cannot be fetched or started fails the test; elsewhere the test is
 * skipped with a message saying why (e.g. no Java or no Maven).
 */
import { Buffer } from "node:buffer";
import { type Consumer, type IHeaders, Kafka, logLevel } from "kafkajs";
import { type KafkaServer, startKafka } from "../../scripts/kafka/launcher.ts";
import { silenceKafkajsTimerWarnings } from "../../src/bridge/kafka/kafkajs_warnings.ts";
import { type Broker, type Defer, startBroker, uid } from "./broker.ts";
import assert from "node:assert/strict";

silenceKafkajsTimerWarnings();

export type { KafkaServer };

const CI = Deno.env.get("CI") === "true";

/** Starts Kafka, or returns null (after saying why) when it is unavailable outside CI. */
export async function startTestKafka(): Promise<KafkaServer | null> {
  try {
    return await startKafka();
  } catch (err) {
    if (CI) throw err;
    console.warn(`SKIPPED: Kafka is not available here (${String(err).slice(0, 2000)})`);
    return null;
  }
}

export function kafkaClient(bootstrap: string): Kafka {
  return new Kafka({
    clientId: "mqttwk-test",
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 },
  });
}

export async function createTopic(bootstrap: string, topic: string, partitions = 3): Promise<void> {
  const admin = kafkaClient(bootstrap).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
}

export interface ProducedRecord {
  key?: string | null;
  value: string | Uint8Array | null;
  headers?: IHeaders;
}

export async function produce(
  bootstrap: string,
  topic: string,
  records: ProducedRecord[],
): Promise<void> {
  const p = kafkaClient(bootstrap).producer({ allowAutoTopicCreation: true });
  await p.connect();
  try {
    await p.send({
      topic,
      messages: records.map((r) => ({
        key: r.key ?? null,
        value: r.value instanceof Uint8Array ? Buffer.from(r.value) : r.value,
        headers: r.headers,
      })),
    });
  } finally {
    await p.disconnect();
  }
}

export interface ReadRecord {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer;
  headers: Record<string, string>;
  /** The headers as kafkajs gives them: Buffers, an array for a repeated name. */
  rawHeaders: IHeaders;
  timestamp: string;
}

/** Reads topics from the beginning in a group of its own and collects every record. */
export class KafkaReader {
  readonly records: ReadRecord[] = [];
  #consumer: Consumer;
  #waiters = new Set<() => void>();

  private constructor(consumer: Consumer) {
    this.#consumer = consumer;
  }

  static async open(bootstrap: string, topics: string[]): Promise<KafkaReader> {
    const consumer = kafkaClient(bootstrap).consumer({
      groupId: `reader-${crypto.randomUUID()}`,
      maxWaitTimeInMs: 100,
    });
    const reader = new KafkaReader(consumer);
    const joined = Promise.withResolvers<void>();
    consumer.on(consumer.events.GROUP_JOIN, () => joined.resolve());
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: true });
    await consumer.run({
      eachMessage: ({ topic, partition, message }) => {
        reader.records.push({
          topic,
          partition,
          offset: message.offset,
          key: message.key ? message.key.toString() : null,
          value: message.value ?? Buffer.alloc(0),
          headers: stringHeaders(message.headers),
          rawHeaders: message.headers ?? {},
          timestamp: message.timestamp,
        });
        for (const w of [...reader.#waiters]) w();
        return Promise.resolve();
      },
    });
    await joined.promise;
    return reader;
  }

  /** Records whose value (as text) satisfies `pred`, or all. */
  values(pred: (r: ReadRecord) => boolean = () => true): string[] {
    return this.records.filter(pred).map((r) => r.value.toString());
  }

  /** Waits until `n` records match `pred`; rejects after `timeoutMs` saying what arrived. */
  waitForCount(
    n: number,
    pred: (r: ReadRecord) => boolean = () => true,
    timeoutMs = 20_000,
  ): Promise<ReadRecord[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const got = this.records.filter(pred);
        if (got.length >= n) {
          this.#waiters.delete(check);
          clearTimeout(timer);
          resolve(got);
        }
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        const got = this.records.filter(pred).length;
        reject(new Error(`timed out waiting for ${n} Kafka records, got ${got}`));
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  async close(): Promise<void> {
    await this.#consumer.disconnect();
  }
}

function stringHeaders(h: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) {
    const one = Array.isArray(v) ? v[0] : v;
    if (one !== undefined) out[k] = one.toString();
  }
  return out;
}

/** Committed offsets of a group on a topic, by partition ("-1" when none). */
export async function committedOffsets(
  bootstrap: string,
  groupId: string,
  topic: string,
): Promise<Map<number, string>> {
  const admin = kafkaClient(bootstrap).admin();
  await admin.connect();
  try {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map(t.partitions.map((p) => [p.partition, p.offset]));
  } finally {
    await admin.disconnect();
  }
}

/** A Kafka topic name from uid(): Kafka allows only [a-zA-Z0-9._-]. */
export function kafkaTopic(label: string): string {
  return uid(label).replace(/[^a-zA-Z0-9._-]/g, "-");
}

/** A broker subprocess with the bridge on, pointed at `kafka`; `settings` are kafka.* keys. */
export function startBridgeBroker(
  kafka: KafkaServer,
  settings: Record<string, string | number | boolean>,
  extra: string[] = [],
): Promise<Broker> {
  return startBroker({
    args: [
      "--mqttwk.broker.kafka.broker-enabled=true",
      `--mqttwk.broker.kafka.bootstrap.servers=${kafka.bootstrap}`,
      ...Object.entries(settings).map(([k, v]) => `--mqttwk.broker.kafka.${k}=${v}`),
      ...extra,
    ],
  });
}

/**
 * A bridge broker (see startBridgeBroker) that reconnects to Kafka within a second and is stopped
 * by `defer`, which checks that it exited with 0.
 */
export async function scopedBridgeBroker(
  kafka: KafkaServer,
  defer: Defer,
  settings: Record<string, string | number | boolean>,
  extra: string[] = [],
): Promise<Broker> {
  const b = await startBridgeBroker(
    kafka,
    { "reconnect.backoff.max.ms": 1000, ...settings },
    extra,
  );
  defer(async () => {
    const code = await b.stop();
    assert.equal(code, 0, `broker exit code; logs:\n${b.logs()}`);
  });
  return b;
}
