/**
 * Ingress: consumes Kafka topics in a consumer group and publishes each record into MQTT.
 * Offsets are committed per batch, only for records the broker has accepted (routed, and durable
 * when the store is), so a crash or a refusal means redelivery, never loss.
 */
import type { Consumer, EachBatchPayload, IHeaders, Kafka, KafkaMessage } from "kafkajs";
import type { Logger } from "../../log.ts";
import type { StoredMessage } from "../../broker/model.ts";
import { describe } from "./egress_report.ts";
import { type InHeaders, propertiesFromHeaders } from "./properties.ts";
import type { IngressSettings } from "./settings.ts";

/** The part of the broker the ingress uses (the real Broker, or a stand-in in tests). */
export interface IngressTarget {
  readonly nodeId: string;
  publish(msg: StoredMessage): void | Promise<void>;
  commitBarrier(): Promise<void> | null;
  isValidTopicName(topic: string): boolean;
}

export interface IngressCounters {
  /** Records published into MQTT and committed. */
  published: number;
  /** Records skipped because no valid MQTT topic came out of them (committed, not retried). */
  skipped: number;
  /** Times the broker refused a record; the record is retried and not committed. */
  refused: number;
  /** Offset commits made. */
  commits: number;
}

export interface IngressOptions {
  settings: IngressSettings;
  kafka: Kafka;
  log: Logger;
  backoffMs: number;
  backoffMaxMs: number;
}

const decoder = new TextDecoder();

export class Ingress {
  readonly counters: IngressCounters = { published: 0, skipped: 0, refused: 0, commits: 0 };
  readonly #o: IngressOptions;
  #target: IngressTarget | null = null;
  #consumer: Consumer | null = null;
  #running = false;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #backoff: number;
  #joined = false;

  constructor(opts: IngressOptions) {
    this.#o = opts;
    this.#backoff = opts.backoffMs;
  }

  /** True once the consumer has joined its group (partitions assigned). */
  get joined(): boolean {
    return this.#joined;
  }

  /** Starts consuming in the background; connection failures are retried, never thrown. */
  start(target: IngressTarget): void {
    this.#target = target;
    this.#running = true;
    void this.#launch();
  }

  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#restartTimer);
    const c = this.#consumer;
    this.#consumer = null;
    if (c) await c.disconnect().catch(() => {});
  }

  async #launch(): Promise<void> {
    if (!this.#running) return;
    const s = this.#o.settings;
    const c = this.#o.kafka.consumer({
      groupId: s.groupId,
      // Ingress latency: the broker answers a fetch as soon as there is data, or after this.
      maxWaitTimeInMs: 250,
      retry: {
        retries: 5,
        initialRetryTime: this.#o.backoffMs,
        maxRetryTime: this.#o.backoffMaxMs,
      },
    });
    this.#consumer = c;
    c.on(c.events.GROUP_JOIN, (e) => {
      this.#joined = true;
      this.#backoff = this.#o.backoffMs;
      const parts = Object.entries(e.payload.memberAssignment)
        .map(([t, ps]) => `${t}[${ps.join(",")}]`).join(" ");
      this.#o.log.info(`kafka ingress joined group ${s.groupId}: ${parts || "no partitions"}`);
    });
    c.on(c.events.CRASH, (e) => {
      this.#joined = false;
      this.#o.log.warn(`kafka ingress consumer failed: ${describe(e.payload.error)}`);
      // kafkajs restarts by itself after retriable errors; after the others it gives up.
      if (!e.payload.restart) this.#relaunch(c);
    });
    try {
      await c.connect();
      await c.subscribe({ topics: s.topics, fromBeginning: s.fromBeginning });
      await c.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: (p) => this.#batch(c, p),
      });
    } catch (err) {
      if (!this.#running || this.#consumer !== c) return;
      this.#o.log.warn(`kafka ingress cannot start (${describe(err)}); retrying`);
      this.#relaunch(c);
    }
  }

  #relaunch(c: Consumer): void {
    if (!this.#running || this.#consumer !== c) return;
    this.#consumer = null;
    void c.disconnect().catch(() => {});
    const wait = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, this.#o.backoffMaxMs);
    this.#restartTimer = setTimeout(() => void this.#launch(), wait);
  }

  async #batch(c: Consumer, p: EachBatchPayload): Promise<void> {
    const { batch } = p;
    const target = this.#target!;
    let accepted: string | null = null;
    let published = 0;
    let skipped = 0;
    let failedAt: string | null = null;
    let failure: unknown = null;
    for (const m of batch.messages) {
      if (!p.isRunning() || p.isStale()) break;
      const topic = this.#mqttTopic(batch.topic, batch.partition, m);
      if (topic === null || !target.isValidTopicName(topic)) {
        // Retrying cannot fix the record, and holding it back would stall its partition.
        skipped++;
        this.#o.log.warn(
          `kafka ingress skipped ${batch.topic}[${batch.partition}]@${m.offset}: ` +
            `no valid MQTT topic (${JSON.stringify(topic)})`,
        );
        accepted = m.offset;
        continue;
      }
      const value = m.value;
      const msg: StoredMessage = {
        // Stable per record, so a redelivered record keeps its identity.
        id: `${target.nodeId}-kafka-${batch.topic}-${batch.partition}-${m.offset}`,
        topic,
        // A copy: a view would pin the whole fetch response while the message is queued.
        payload: value ? new Uint8Array(value) : new Uint8Array(0),
        qos: this.#o.settings.qos,
        retain: this.#o.settings.retain,
        createdAt: Date.now(),
      };
      withProperties(msg, m.headers, target);
      try {
        await target.publish(msg);
      } catch (err) {
        failedAt = m.offset;
        failure = err;
        break;
      }
      published++;
      accepted = m.offset;
    }
    if (accepted !== null) {
      try {
        await target.commitBarrier();
      } catch (err) {
        // Not durable: nothing of this batch may be committed.
        failedAt = batch.messages[0].offset;
        failure = err;
        accepted = null;
        published = 0;
      }
    }
    if (accepted !== null) {
      const next = (BigInt(accepted) + 1n).toString();
      p.resolveOffset(accepted);
      await p.commitOffsetsIfNecessary({
        topics: [{
          topic: batch.topic,
          partitions: [{ partition: batch.partition, offset: next }],
        }],
      });
      this.counters.commits++;
      this.counters.published += published;
      this.counters.skipped += skipped;
    }
    await p.heartbeat();
    if (failedAt !== null) {
      this.counters.refused++;
      this.#o.log.warn(
        `kafka ingress: broker did not accept ${batch.topic}[${batch.partition}]@${failedAt} ` +
          `(${describe(failure)}); not committed, retrying`,
      );
      const until = Date.now() + this.#backoff;
      while (p.isRunning() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      this.#backoff = Math.min(this.#backoff * 2, this.#o.backoffMaxMs);
      if (p.isRunning()) {
        c.seek({ topic: batch.topic, partition: batch.partition, offset: failedAt });
      }
    } else {
      this.#backoff = this.#o.backoffMs;
    }
  }

  #mqttTopic(topic: string, partition: number, m: KafkaMessage): string | null {
    const s = this.#o.settings;
    if (s.topicHeader) {
      const h = headerString(m.headers, s.topicHeader);
      if (h !== undefined) return h;
    }
    const key = m.key ? decoder.decode(m.key) : "";
    return s.mqttTopic.replace(
      /\{(topic|key|partition)\}/g,
      (_, name: string) => name === "topic" ? topic : name === "key" ? key : String(partition),
    );
  }
}

function headerString(headers: IHeaders | undefined, name: string): string | undefined {
  const v = headers?.[name];
  if (v === undefined) return undefined;
  const one = Array.isArray(v) ? v[0] : v;
  if (one === undefined) return undefined;
  return typeof one === "string" ? one : decoder.decode(one);
}

/**
 * MQTT 5.0 properties from the record's headers (properties.ts), the expiry counted from now. A
 * Response Topic that is no valid topic name is left out: a subscriber could not answer to it.
 */
function withProperties(
  msg: StoredMessage,
  headers: IHeaders | undefined,
  target: { isValidTopicName(t: string): boolean },
): void {
  const p = propertiesFromHeaders(headers as InHeaders | undefined, msg.payload);
  if (p === undefined) return;
  if (p.responseTopic !== undefined && !target.isValidTopicName(p.responseTopic)) {
    delete p.responseTopic;
  }
  if (p.messageExpiryInterval !== undefined) {
    msg.expiresAt = msg.createdAt + p.messageExpiryInterval * 1000;
  }
  if (Object.keys(p).length > 0) msg.properties = p;
}
