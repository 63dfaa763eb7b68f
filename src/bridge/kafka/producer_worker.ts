/**
 * Runs the Kafka producer off the broker's thread: @platformatic/kafka's connections, metadata and
 * producer ids, with produce requests written by batch_sender.ts from the records the main thread
 * packed (batch_wire.ts). Kafka's answers, connection trouble and metadata stay off MQTT's
 * thread. The main thread keeps the buffer, limits and acknowledgements (egress.ts) and hands over
 * whole batches packed in one transferred buffer (producer_link.ts).
 */
/// <reference lib="deno.worker" />
import { readBatch } from "./batch_wire.ts";
import { explainKafkaError, isPermanentKafkaError, KafkaProducer } from "./kafka_producer.ts";
import type { WorkerReply, WorkerRequest } from "./producer_link.ts";

let producer: KafkaProducer | null = null;

const reply = (r: WorkerReply) => self.postMessage(r, r.batch ? [r.batch] : []);

/** Handles a request; a send gives its buffer back to be transferred home. */
async function handle(req: WorkerRequest): Promise<ArrayBuffer | undefined> {
  switch (req.op) {
    case "init": {
      producer = new KafkaProducer(req.config);
      return;
    }
    case "connect": {
      await producer!.connect();
      return;
    }
    case "send": {
      await producer!.send(readBatch(new Uint8Array(req.batch)));
      return req.batch;
    }
    case "disconnect": {
      await producer?.disconnect();
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
        message: explainKafkaError(err),
        permanent: isPermanentKafkaError(err),
        batch: req.op === "send" ? req.batch : undefined,
      }),
  );
};
