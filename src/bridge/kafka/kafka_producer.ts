/**
 * The bridge's Kafka producer for one connection attempt: @platformatic/kafka's client (its
 * connections, metadata and producer ids) with batch_sender.ts writing the produce requests, and
 * the errors that come out of it classified for the egress pipeline (permanent or not).
 */
import type { Buffer } from "node:buffer";
import { Producer } from "@platformatic/kafka";
import { BatchSender } from "./batch_sender.ts";
import type { PackedBatch } from "./batch_wire.ts";
import { describe } from "./egress_report.ts";

/** What the producer is created with (the bridge's settings that concern it). */
export interface ProducerConfig {
  clientId: string;
  brokers: string[];
  acks: -1 | 0 | 1;
  idempotent: boolean;
  retries: number;
  backoffMs: number;
  backoffMaxMs: number;
}

/** Kafka errors that no retry can fix: the record is dropped (and counted) instead of retried. */
const PERMANENT = new Set([
  "MESSAGE_TOO_LARGE",
  "RECORD_LIST_TOO_LARGE",
  "INVALID_TOPIC_EXCEPTION",
  "TOPIC_AUTHORIZATION_FAILED",
  "INVALID_RECORD",
  "INVALID_TIMESTAMP",
  "POLICY_VIOLATION",
  "UNSUPPORTED_COMPRESSION_TYPE",
]);

/** Whether the client's error (or one nested in it: `errors`, `cause`) is a permanent one. */
export function isPermanentKafkaError(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== "object" || depth > 5) return false;
  const e = err as { apiId?: unknown; type?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.apiId === "string" && PERMANENT.has(e.apiId)) return true;
  if (typeof e.type === "string" && PERMANENT.has(e.type)) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => isPermanentKafkaError(x, depth + 1))) {
    return true;
  }
  return isPermanentKafkaError(e.cause, depth + 1);
}

/** The deepest message of a nested client error, which names the actual Kafka error. */
export function explainKafkaError(err: unknown, depth = 0): string {
  const e = err as { errors?: unknown; cause?: unknown; apiId?: unknown } | null;
  if (e && typeof e === "object" && depth < 5) {
    if (Array.isArray(e.errors) && e.errors.length > 0) {
      return `${describe(err)}: ${explainKafkaError(e.errors[0], depth + 1)}`;
    }
    if (typeof e.apiId === "string") return `${e.apiId}: ${describe(err)}`;
  }
  return describe(err);
}

type Client = Producer<Buffer, Buffer, Buffer, Buffer>;

/** One connection attempt's producer; connect() again replaces it with a fresh one. */
export class KafkaProducer {
  readonly #c: ProducerConfig;
  #client: Client | null = null;
  #sender: BatchSender | null = null;

  constructor(config: ProducerConfig) {
    this.#c = config;
  }

  /** A fresh client and producer id; rejects when Kafka cannot be reached. */
  async connect(): Promise<void> {
    const c = this.#c;
    await this.disconnect();
    const p: Client = new Producer({
      clientId: c.clientId,
      bootstrapBrokers: c.brokers,
      connectTimeout: 3000,
      // kafkajs's request timeout, which the bridge had: a slow Kafka is waited for, not
      // abandoned after the client's 5 s default (which would resend whole batches).
      timeout: 30_000,
      // Idempotence is the sender's (producer id and sequences in the batches it writes); the
      // client's own flag would also hold its connection to one request at a time.
      idempotent: false,
      // As many requests on the connection as Kafka keeps in order for an idempotent producer.
      maxInflights: 5,
      // The client's default for an idempotent producer with 0 or 1 retries is endless ones,
      // which would hide an outage inside one send; 2 keeps the bridge's own reconnect in charge.
      retries: c.idempotent ? Math.max(2, c.retries) : c.retries,
      // Doubling from reconnect.backoff.ms up to its max, like the rest of the bridge.
      retryDelay: (_client, _op, attempt) =>
        Math.min(c.backoffMs * 2 ** Math.max(0, attempt - 1), c.backoffMaxMs),
      autocreateTopics: true,
    });
    this.#client = p;
    const s = new BatchSender(p, { acks: c.acks, idempotent: c.idempotent });
    // The client connects lazily; asking for a producer id (idempotent) or the cluster metadata
    // makes a missing Kafka show here instead of at the first send.
    await s.start();
    this.#sender = s;
  }

  /** Resolves once Kafka acknowledged every record of `batch`. */
  send(batch: PackedBatch): Promise<void> {
    const s = this.#sender;
    if (!s) return Promise.reject(new Error("not connected"));
    return s.send(batch);
  }

  async disconnect(): Promise<void> {
    const p = this.#client;
    this.#client = null;
    this.#sender = null;
    // force: a send stuck on a dead connection must not keep the producer open.
    await p?.close(true).catch(() => {});
  }
}
