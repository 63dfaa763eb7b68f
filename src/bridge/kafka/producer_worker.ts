/**
 * Runs the kafkajs producer off the broker's thread. Encoding records costs kafkajs tens of
 * microseconds each, which on the main thread would stall MQTT for the length of every batch;
 * here it uses another core. The main thread keeps the buffer, limits and acknowledgements
 * (egress.ts) and sends one request at a time (producer_link.ts).
 */
/// <reference lib="deno.worker" />
import { Buffer } from "node:buffer";
import { Kafka, type LogEntry, logLevel, type Message, Partitioners, type Producer } from "kafkajs";
import { describe } from "./egress.ts";
import { silenceKafkajsTimerWarnings } from "./kafkajs_warnings.ts";
import type { WireRecord, WorkerReply, WorkerRequest } from "./producer_link.ts";

silenceKafkajsTimerWarnings();

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

function isPermanent(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== "object" || depth > 5) return false;
  const e = err as { type?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.type === "string" && PERMANENT.has(e.type)) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => isPermanent(x, depth + 1))) return true;
  return isPermanent(e.cause, depth + 1);
}

let kafka: Kafka | null = null;
let producer: Producer | null = null;
let acks: -1 | 0 | 1 = -1;
let idempotent = true;
let retry = { retries: 3, initialRetryTime: 100, maxRetryTime: 10_000 };

const reply = (r: WorkerReply) => self.postMessage(r);

async function handle(req: WorkerRequest): Promise<void> {
  switch (req.op) {
    case "init": {
      const c = req.config;
      acks = c.acks;
      idempotent = c.idempotent;
      retry = { retries: c.retries, initialRetryTime: c.backoffMs, maxRetryTime: c.backoffMaxMs };
      kafka = new Kafka({
        clientId: c.clientId,
        brokers: c.brokers,
        connectionTimeout: 3000,
        retry,
        logLevel: c.debug ? logLevel.INFO : logLevel.NOTHING,
        logCreator: () => (e: LogEntry) =>
          reply({ id: -1, ok: true, log: `kafkajs ${e.namespace}: ${e.log.message}` }),
      });
      return;
    }
    case "connect": {
      await producer?.disconnect().catch(() => {});
      producer = kafka!.producer({
        idempotent,
        maxInFlightRequests: idempotent ? 1 : undefined,
        // Java's default (murmur2 of the key), so keyed records land where Java producers put them.
        createPartitioner: Partitioners.DefaultPartitioner,
        allowAutoTopicCreation: true,
        retry,
      });
      await producer.connect();
      return;
    }
    case "send": {
      if (!producer) throw new Error("not connected");
      const byTopic = new Map<string, Message[]>();
      for (const r of req.records) {
        const m: Message = {
          key: r.key,
          value: Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength),
          headers: kafkaHeaders(r.headers),
          timestamp: r.timestamp,
        };
        const list = byTopic.get(r.topic);
        if (list) list.push(m);
        else byTopic.set(r.topic, [m]);
      }
      await producer.sendBatch({
        acks,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
      return;
    }
    case "disconnect": {
      const p = producer;
      producer = null;
      await p?.disconnect().catch(() => {});
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
    (err) => reply({ id: req.id, ok: false, message: describe(err), permanent: isPermanent(err) }),
  );
};

/**
 * Header bytes (correlation data) crossed the thread as plain Uint8Arrays; kafkajs writes only a
 * Buffer as bytes (anything else as its string form), so they become Buffers again.
 */
function kafkaHeaders(h: WireRecord["headers"]): Message["headers"] {
  let out: Message["headers"] | undefined;
  for (const k in h) {
    const v = h[k];
    if (v instanceof Uint8Array && !Buffer.isBuffer(v)) {
      out ??= { ...h } as Message["headers"];
      out![k] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    }
  }
  return out ?? h as Message["headers"];
}
