/**
 * The egress pipeline's producer on the broker's own thread: the same KafkaProducer and packed
 * batches as the producer thread (producer_worker.ts), without the two thread hops. Under a
 * QoS 1 fan-in the hop back (the worker's answer waiting for the main thread's turn and for a
 * core) was a third of each produce request's round trip; here Kafka's answer is read by the
 * main event loop itself and settles the publishers' acknowledgements in the same turn.
 */
import type { ProducerLink } from "./egress.ts";
import { packBatch, readBatch } from "./batch_wire.ts";
import { explainKafkaError, isPermanentKafkaError, KafkaProducer } from "./kafka_producer.ts";
import type { ProducerConfig } from "./kafka_producer.ts";
import { KafkaSendError } from "./producer_link.ts";
import type { BridgeRecord } from "./records.ts";

/** Buffers kept for reuse; more than two or three are never out at once. */
const SPARE_BUFFERS = 4;

/** Classified like the worker's replies, so the egress treats both producers alike. */
function classify(err: unknown): KafkaSendError {
  return new KafkaSendError(explainKafkaError(err), isPermanentKafkaError(err));
}

/** A ProducerLink around one KafkaProducer on this thread. */
export function inlineProducer(config: ProducerConfig): ProducerLink {
  const producer = new KafkaProducer(config);
  const spare: ArrayBuffer[] = [];
  return {
    connect: () => producer.connect().catch((err) => Promise.reject(classify(err))),
    send: (records: BridgeRecord[]) => {
      const buf = packBatch(records, spare.pop());
      const giveBack = () => {
        if (spare.length < SPARE_BUFFERS) spare.push(buf);
      };
      return producer.send(readBatch(new Uint8Array(buf))).then(giveBack, (err) => {
        giveBack();
        return Promise.reject(classify(err));
      });
    },
    disconnect: () => producer.disconnect(),
  };
}
