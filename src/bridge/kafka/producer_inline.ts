/**
 * The egress pipeline's producer on the broker's own thread: the same KafkaProducer as the
 * producer thread (producer_worker.ts), without the two thread hops. Under a QoS 1 fan-in the
 * hop back (the worker's answer waiting for the main thread's turn and for a core) was a third
 * of each produce request's round trip; here Kafka's answer is read by the main event loop itself
 * and settles the publishers' acknowledgements in the same turn. The batch is read straight from
 * the queued records (batch_refs.ts), not packed into the producer thread's transfer buffer.
 */
import type { ProducerLink } from "./egress.ts";
import { batchOf } from "./batch_refs.ts";
import { explainKafkaError, isPermanentKafkaError, KafkaProducer } from "./kafka_producer.ts";
import type { ProducerConfig } from "./kafka_producer.ts";
import { KafkaSendError } from "./producer_link.ts";
import type { BridgeRecord } from "./records.ts";

/** Classified like the worker's replies, so the egress treats both producers alike. */
function classify(err: unknown): KafkaSendError {
  return new KafkaSendError(explainKafkaError(err), isPermanentKafkaError(err));
}

const reject = (err: unknown) => Promise.reject(classify(err));

/** A ProducerLink around one KafkaProducer on this thread. */
export function inlineProducer(config: ProducerConfig): ProducerLink {
  const producer = new KafkaProducer(config);
  return {
    connect: () => producer.connect().catch(reject),
    send: (records: BridgeRecord[]) => producer.send(batchOf(records)).catch(reject),
    disconnect: () => producer.disconnect(),
  };
}
