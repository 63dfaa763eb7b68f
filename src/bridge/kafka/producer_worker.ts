/**
 * Runs the Kafka producer off the broker's thread: @platformatic/kafka's connections, metadata and
 * producer ids, with produce requests written by batch_sender.ts from the records the main thread
 * packed (batch_wire.ts). Kafka's answers, connection trouble and metadata stay off MQTT's
 * thread. The main thread keeps the buffer, limits and acknowledgements (egress.ts) and hands over
 * whole batches packed in one transferred buffer (producer_link.ts).
 */
/// <reference lib="deno.worker" />
import type { Buffer } from "node:buffer";
import { Producer } from "@platformatic/kafka";
import { readBatch } from "./batch_wire.ts";
import { BatchSender } from "./batch_sender.ts";
import { describe } from "./egress.ts";
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
let sender: BatchSender | null = null;

const reply = (r: WorkerReply) => self.postMessage(r, r.batch ? [r.batch] : []);

async function close(p: Producer<Buffer, Buffer, Buffer, Buffer> | null): Promise<void> {
  // force: a send stuck on a dead connection must not keep the producer open.
  await p?.close(true).catch(() => {});
}

/** Handles a request; a send gives its buffer back to be transferred home. */
async function handle(req: WorkerRequest): Promise<ArrayBuffer | undefined> {
  switch (req.op) {
    case "init": {
      config = req.config;
      return;
    }
    case "connect": {
      const c = config!;
      await close(producer);
      sender = null;
      const p = new Producer<Buffer, Buffer, Buffer, Buffer>({
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
      producer = p;
      const s = new BatchSender(p, { acks: c.acks, idempotent: c.idempotent });
      // The client connects lazily; asking for a producer id (idempotent) or the cluster metadata
      // makes a missing Kafka show here instead of at the first send.
      await s.start();
      sender = s;
      return;
    }
    case "send": {
      const s = sender;
      if (!s) throw new Error("not connected");
      await s.send(readBatch(new Uint8Array(req.batch)));
      return req.batch;
    }
    case "disconnect": {
      const p = producer;
      producer = null;
      sender = null;
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
    (batch) => reply({ id: req.id, ok: true, batch }),
    (err) =>
      reply({
        id: req.id,
        ok: false,
        message: explain(err),
        permanent: isPermanent(err),
        batch: req.op === "send" ? req.batch : undefined,
      }),
  );
};
