import { Kafka, logLevel, Partitioners } from "kafkajs";
import { Buffer } from "node:buffer";
import { startKafka } from "./scripts/kafka/launcher.ts";
const k = await startKafka();
const kafka = new Kafka({ clientId: "p", brokers: [k.bootstrap], logLevel: logLevel.NOTHING });
for (const [idem, hdr] of [[true, true], [false, true], [true, false], [false, false]]) {
  const p = kafka.producer({ idempotent: idem, maxInFlightRequests: idem ? 1 : undefined, createPartitioner: Partitioners.DefaultPartitioner });
  await p.connect();
  const topic = `prof-${idem}-${hdr}`;
  const mk = (i: number) => ({ key: `load/${i % 4}`, value: Buffer.alloc(100), timestamp: String(Date.now()), headers: hdr ? { "mqtt.topic": "load/x", "mqtt.qos": "1", "mqtt.retain": "false", "mqtt.client_id": "bench-1", "mqttwk.node_id": "n", "mqttwk.timestamp": "1795676532058", "mqttwk.message_id": "n-123" } : undefined });
  await p.sendBatch({ acks: -1, topicMessages: [{ topic, messages: [mk(0)] }] });
  const N = 50000, B = 3000;
  const t0 = performance.now();
  for (let i = 0; i < N; i += B) {
    const msgs = []; for (let j = 0; j < B; j++) msgs.push(mk(i + j));
    await p.sendBatch({ acks: -1, topicMessages: [{ topic, messages: msgs }] });
  }
  console.log(`idempotent=${idem} headers=${hdr}: ${Math.round(N / ((performance.now() - t0) / 1000))} rec/s`);
  await p.disconnect();
}
await k.close();
