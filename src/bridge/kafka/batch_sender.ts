/**
 * Sends packed batches (batch_wire.ts) to Kafka on the producer thread. @platformatic/kafka does
 * what is hard to get right: connections, cluster metadata, topic creation, producer ids and the
 * retry policy; the produce request itself is written by record_batch.ts, because the client's
 * own encoding (a Buffer per field, a list of them per record, validated message objects) cost
 * more than everything else the bridge does per record.
 *
 * Order: batches are partitioned, numbered (idempotence sequences) and handed to the connection
 * strictly in the order they arrive; only the waits for Kafka's answers overlap. A failed request
 * drops the producer id, so the next request starts a fresh one (sequence 0) rather than collide
 * with sequences Kafka never stored, as the client does itself.
 */
import type { Buffer } from "node:buffer";
import {
  type Broker,
  type ClusterMetadata,
  kGetApi,
  kGetConnection,
  kMetadata,
  kOptions,
  kPerformWithRetry,
  type Producer,
  produceV10,
  produceV11,
  produceV3,
  produceV4,
  produceV5,
  produceV6,
  produceV7,
  produceV8,
  produceV9,
  Writer,
} from "@platformatic/kafka";
import type { PackedBatch } from "./batch_wire.ts";
import { readVarint, varintEnd } from "./byte_writer.ts";
import { Partitioner } from "./partitioner.ts";
import { type PartitionBatch, produceRequestBody } from "./record_batch.ts";

type AnyProducer = Producer<Buffer, Buffer, Buffer, Buffer>;

/** Response parsers of the Produce versions the client implements (it negotiates which). */
const PARSERS: Record<number, typeof produceV11.parseResponse> = {
  3: produceV3.parseResponse,
  4: produceV4.parseResponse,
  5: produceV5.parseResponse,
  6: produceV6.parseResponse,
  7: produceV7.parseResponse,
  8: produceV8.parseResponse,
  9: produceV9.parseResponse,
  10: produceV10.parseResponse,
  11: produceV11.parseResponse,
};

/** Produce API key. */
const PRODUCE = 0;
/** Kafka's sequence numbers wrap to 0 after the largest int32 (DefaultRecordBatch). */
const MAX_SEQUENCE = 0x7fffffff;

export interface SenderSettings {
  acks: -1 | 0 | 1;
  idempotent: boolean;
}

type Identity = { producerId: bigint; producerEpoch: number };

/** What to send to one broker: its partitions' batches, as one Produce request body. */
interface Destination {
  broker: Broker;
  batches: PartitionBatch[];
  body?: Buffer;
}

/** How long metadata the sender has is used without asking the client (which checks options). */
const METADATA_REUSE_MS = 1000;

export class BatchSender {
  readonly #client: AnyProducer;
  readonly #s: SenderSettings;
  readonly #partitioner = new Partitioner();
  #identity: Promise<Identity> | null = null;
  /** Next sequence per "topic\0partition" under the current producer id. */
  #sequences = new Map<string, number>();
  /** The previous batch's hand-over to the connection: batches go out in arrival order. */
  #order: Promise<unknown> = Promise.resolve();
  /** Metadata of the last batch and when it was fetched; dropped after any failure. */
  #md: ClusterMetadata | null = null;
  #mdAt = 0;

  constructor(client: AnyProducer, settings: SenderSettings) {
    this.#client = client;
    this.#s = settings;
  }

  /** Makes sure Kafka is reachable (and gets a producer id when idempotent). */
  async start(): Promise<void> {
    if (this.#s.idempotent) await this.#producerIdentity();
    else await this.#metadata([], false);
  }

  /** Resolves once Kafka acknowledged every record of `b` (per acks). */
  async send(b: PackedBatch): Promise<void> {
    const handedOver = this.#order.then(() => this.#dispatch(b));
    // The next batch waits for this one's hand-over, not for its answer.
    this.#order = handedOver.catch(() => {});
    try {
      const answers = await handedOver;
      await Promise.all(answers);
    } catch (err) {
      this.#forgetIdentity();
      this.#md = null;
      throw err;
    }
  }

  /** Partitions, numbers and encodes `b` and hands its requests to the connections. */
  async #dispatch(b: PackedBatch): Promise<Promise<void>[]> {
    const md = await this.#currentMetadata(b.topics);
    const batches = this.#partition(b, md);
    if (this.#s.idempotent) {
      const who = await this.#producerIdentity();
      for (const pb of batches) {
        pb.id = {
          producerId: who.producerId,
          producerEpoch: who.producerEpoch,
          baseSequence: this.#nextSequence(pb),
        };
      }
    }
    const version = await this.#produceVersion();
    const timeout = (this.#client[kOptions] as { timeout?: number }).timeout ?? 30_000;
    const answers: Promise<void>[] = [];
    for (const d of this.#destinations(batches, md)) {
      d.body = produceRequestBody(version, this.#s.acks, timeout, b, d.batches);
      const { handedOver, answered } = this.#produce(d, b.topics);
      answers.push(answered);
      await handedOver;
    }
    return answers;
  }

  /** The metadata of the last batch while it is fresh and knows `topics`; else the client's. */
  async #currentMetadata(topics: string[]): Promise<ClusterMetadata> {
    const md = this.#md;
    if (md !== null && Date.now() - this.#mdAt < METADATA_REUSE_MS) {
      let known = true;
      for (const t of topics) if (!md.topics.has(t)) known = false;
      if (known) return md;
    }
    const fresh = await this.#metadata(topics, false);
    this.#md = fresh;
    this.#mdAt = Date.now();
    return fresh;
  }

  #version = 0;

  /** The Produce version the client negotiated with Kafka. */
  #produceVersion(): Promise<number> | number {
    if (this.#version > 0) return this.#version;
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    this.#client[kGetApi]("Produce", (err, api) => {
      if (err) return reject(err);
      const v = api!.version;
      if (!PARSERS[v]) return reject(new Error(`produce v${v} is not supported`));
      this.#version = v;
      resolve(v);
    });
    return promise;
  }

  /** Groups the records by topic and partition, keeping their order within each. */
  #partition(b: PackedBatch, md: ClusterMetadata): PartitionBatch[] {
    const out: PartitionBatch[] = [];
    const byTopic: (PartitionBatch | undefined)[][] = b.topics.map(() => []);
    const counts = b.topics.map((t) => {
      const n = md.topics.get(t)?.partitionsCount;
      if (!n) throw new Error(`no partitions known for kafka topic ${t}`);
      return n;
    });
    const sources = b.sources;
    for (let i = 0; i < b.count; i++) {
      const t = b.topic[i];
      const bytes = sources[i];
      const keyLength = readVarint(bytes, b.tailAt[i]);
      const p = (keyLength < 0
        ? this.#partitioner.unkeyed(b.topics[t])
        : this.#partitioner.keyed(bytes, varintEnd, keyLength)) % counts[t];
      let pb = byTopic[t][p];
      if (pb === undefined) {
        pb = { topic: b.topics[t], partition: p, records: [] };
        byTopic[t][p] = pb;
        out.push(pb);
      }
      pb.records.push(i);
    }
    return out;
  }

  #nextSequence(pb: PartitionBatch): number {
    const key = `${pb.topic}\0${pb.partition}`;
    const seq = this.#sequences.get(key) ?? 0;
    const n = pb.records.length;
    this.#sequences.set(key, seq > MAX_SEQUENCE - n ? n - (MAX_SEQUENCE - seq) - 1 : seq + n);
    return seq;
  }

  /** Batches grouped by the broker that leads their partition. */
  #destinations(batches: PartitionBatch[], md: ClusterMetadata): Destination[] {
    const out = new Map<number, Destination>();
    for (const pb of batches) {
      const leader = md.topics.get(pb.topic)?.partitions[pb.partition]?.leader ?? -1;
      const broker = md.brokers.get(leader);
      if (broker === undefined) {
        throw new Error(`no leader known for kafka topic ${pb.topic} partition ${pb.partition}`);
      }
      let d = out.get(leader);
      if (d === undefined) {
        d = { broker, batches: [] };
        out.set(leader, d);
      }
      d.batches.push(pb);
    }
    return [...out.values()];
  }

  /**
   * One Produce request to `d`, with the client's retries (the same bytes again: idempotence
   * lets Kafka drop a copy it already has). `handedOver` settles once the first attempt is queued
   * on the connection (or failed before that), `answered` with Kafka's answer.
   */
  #produce(
    d: Destination,
    topics: string[],
  ): { handedOver: Promise<void>; answered: Promise<void> } {
    const c = this.#client;
    const handed = Promise.withResolvers<void>();
    const answered = Promise.withResolvers<void>();
    const version = this.#version;
    const parse = PARSERS[version];
    const flexible = version >= 9;
    let refresh = false;
    c[kPerformWithRetry]<unknown>("produce", (retry, attempt) => {
      const fail = (err: Error) => {
        refresh = true;
        handed.resolve();
        retry(err);
      };
      const withBroker = (target: Broker) => {
        c[kGetConnection](target, (err, conn) => {
          if (err) return fail(err);
          const writer = Writer.create().append(d.body!);
          // acks 0: Kafka sends no answer, and the connection must not wait for one.
          if (this.#s.acks === 0) writer.context.noResponse = true;
          conn!.send(PRODUCE, version, () => writer, parse, flexible, flexible, (err, res) => {
            if (err) refresh = true;
            retry(err ?? null, res);
          });
          handed.resolve();
        });
      };
      if (attempt === 0 && !refresh) return withBroker(d.broker);
      // A retry asks where the partitions are now (the client's own send does the same).
      this.#metadata(topics, refresh).then((md) => {
        refresh = false;
        const pb = d.batches[0];
        const leader = md.topics.get(pb.topic)?.partitions[pb.partition]?.leader ?? -1;
        const b = md.brokers.get(leader);
        if (b === undefined) return fail(new Error(`no leader for ${pb.topic}/${pb.partition}`));
        withBroker(b);
      }, fail);
    }, (err) => {
      handed.resolve();
      if (err) answered.reject(err);
      else answered.resolve();
    }, 0);
    return { handedOver: handed.promise, answered: answered.promise };
  }

  #metadata(topics: string[], forceUpdate: boolean): Promise<ClusterMetadata> {
    const { promise, resolve, reject } = Promise.withResolvers<ClusterMetadata>();
    this.#client[kMetadata](
      // A copy: the client sorts the list it is given, and batches index theirs.
      { topics: [...topics], autocreateTopics: true, forceUpdate },
      (err, md) => err ? reject(err) : resolve(md!),
    );
    return promise;
  }

  #producerIdentity(): Promise<Identity> {
    if (this.#identity === null) {
      const p = this.#client.initIdempotentProducer({}).then((info) => ({
        producerId: info.producerId,
        producerEpoch: info.producerEpoch,
      }));
      this.#identity = p;
      this.#sequences = new Map();
      // A failed attempt must not stick: the next batch tries again.
      p.catch(() => {
        if (this.#identity === p) this.#identity = null;
      });
    }
    return this.#identity;
  }

  #forgetIdentity(): void {
    this.#identity = null;
    this.#sequences = new Map();
  }
}
