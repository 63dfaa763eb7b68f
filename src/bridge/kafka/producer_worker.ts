/**
 * Runs the Kafka producer (@platformatic/kafka) off the broker's thread. Encoding records costs
 * the client a few microseconds each, which on the main thread would stall MQTT for the length of
 * every batch; here it uses another core. The main thread keeps the buffer, limits and
 * acknowledgements (egress.ts) and hands over whole batches packed in one transferred buffer
 * (batch_wire.ts, producer_link.ts).
 */
/// <reference lib="deno.worker" />
import { Buffer } from "node:buffer";
import { type MessageToProduce, Producer } from "@platformatic/kafka";
import { unpackBatch } from "./batch_wire.ts";
import { describe } from "./egress.ts";
import { javaCompatiblePartitioner } from "./partitioner.ts";
import type { WorkerConfig, WorkerReply, WorkerRequest } from "./producer_link.ts";

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

/** Looks through the client's nested errors (AggregateError-style `errors`, `cause`). */
function isPermanent(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== "object" || depth > 5) return false;
  const e = err as { apiId?: unknown; type?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.apiId === "string" && PERMANENT.has(e.apiId)) return true;
  if (typeof e.type === "string" && PERMANENT.has(e.type)) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => isPermanent(x, depth + 1))) return true;
  return isPermanent(e.cause, depth + 1);
}

/** The deepest message of a nested client error, which names the actual Kafka error. */
function explain(err: unknown, depth = 0): string {
  const e = err as { errors?: unknown; cause?: unknown; apiId?: unknown } | null;
  if (e && typeof e === "object" && depth < 5) {
    if (Array.isArray(e.errors) && e.errors.length > 0) {
      return `${describe(err)}: ${explain(e.errors[0], depth + 1)}`;
    }
    if (typeof e.apiId === "string") return `${e.apiId}: ${describe(err)}`;
  }
  return describe(err);
}

let config: WorkerConfig | null = null;
let producer: Producer<Buffer, Buffer, Buffer, Buffer> | null = null;

const reply = (r: WorkerReply) => self.postMessage(r);

async function close(p: Producer<Buffer, Buffer, Buffer, Buffer> | null): Promise<void> {
  // force: a send stuck on a dead connection must not keep the producer open.
  await p?.close(true).catch(() => {});
}

async function handle(req: WorkerRequest): Promise<void> {
  switch (req.op) {
    case "init": {
      config = req.config;
      return;
    }
    case "connect": {
      const c = config!;
      await close(producer);
      const p = new Producer<Buffer, Buffer, Buffer, Buffer>({
        clientId: c.clientId,
        bootstrapBrokers: c.brokers,
        connectTimeout: 3000,
        // kafkajs's request timeout, which the bridge had: a slow Kafka is waited for, not
        // abandoned after the client's 5 s default (which would resend whole batches).
        timeout: 30_000,
        idempotent: c.idempotent,
        acks: c.acks,
        // The client turns 0 or 1 retries of an idempotent producer into endless ones, which
        // would hide an outage inside one send; 2 keeps the bridge's own reconnect in charge.
        retries: c.idempotent ? Math.max(2, c.retries) : c.retries,
        // Doubling from reconnect.backoff.ms up to its max, like the rest of the bridge.
        retryDelay: (_client, _op, attempt) =>
          Math.min(c.backoffMs * 2 ** Math.max(0, attempt - 1), c.backoffMaxMs),
        autocreateTopics: true,
        // Java's default (murmur2 of the key), so keyed records land where Java producers put them.
        partitioner: javaCompatiblePartitioner(),
      });
      producer = p;
      // The client connects lazily; asking for a producer id (idempotent) or the cluster metadata
      // makes a missing Kafka show here instead of at the first send.
      if (c.idempotent) await p.initIdempotentProducer({});
      else await p.metadata({ topics: [] });
      return;
    }
    case "send": {
      const p = producer;
      if (!p) throw new Error("not connected");
      const batch = Buffer.from(req.batch);
      const recs = unpackBatch(batch);
      const messages: MessageToProduce<Buffer, Buffer, Buffer, Buffer>[] = new Array(recs.length);
      for (let i = 0; i < recs.length; i++) {
        const r = recs[i];
        messages[i] = {
          topic: r.topic,
          key: (r.key ?? undefined) as Buffer | undefined,
          value: r.value as Buffer,
          // Views of `batch`, so Buffers; distinct name objects keep repeated header names.
          headers: r.headers as Map<Buffer, Buffer>,
          timestamp: BigInt(r.timestamp),
        };
      }
      await p.send({ messages });
      return;
    }
    case "disconnect": {
      const p = producer;
      producer = null;
      await close(p);
      return;
    }
  }
}

// Requests arrive one at a time (the egress loop awaits each), but a disconnect may overtake a
// send that is stuck on a dead connection; handling them concurrently lets it fail that send.
self.onmessage = (e: MessageEvent<WorkerRequest>) => {
  const req = e.data;
  handle(req).then(
    () => reply({ id: req.id, ok: true }),
    (err) => reply({ id: req.id, ok: false, message: explain(err), permanent: isPermanent(err) }),
  );
};
