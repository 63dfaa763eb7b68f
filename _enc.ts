import { createRequire } from "node:module";
import { Buffer } from "node:buffer";
const require = createRequire(import.meta.url);
const base = "./node_modules/.deno/kafkajs@2.2.4/node_modules/kafkajs/src/";
const Record = require(base + "protocol/recordBatch/record/v0/index.js");
const Encoder = require(base + "protocol/encoder.js");
const hdrS = { "mqtt.topic": "load/x", "mqtt.qos": "1", "mqtt.retain": "false", "mqtt.client_id": "bench-1", "mqttwk.node_id": "n", "mqttwk.timestamp": "1795676532058", "mqttwk.message_id": "n-123" };
const hdrB = Object.fromEntries(Object.entries(hdrS).map(([k, v]) => [k, Buffer.from(v)]));
const value = Buffer.alloc(100);
for (const [name, h] of [["none", {}], ["strings", hdrS], ["buffers", hdrB]] as const) {
  const N = 50000;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) Record({ offsetDelta: i, timestampDelta: 0, key: Buffer.from("load/1"), value, headers: h });
  console.log(name, Math.round(N / ((performance.now() - t0) / 1000)), "rec/s");
}
const N = 200000; let t0 = performance.now();
for (let i = 0; i < N; i++) new Encoder();
console.log("new Encoder", Math.round(N / ((performance.now() - t0) / 1000)), "/s");
t0 = performance.now();
for (let i = 0; i < N; i++) Buffer.alloc(64);
console.log("Buffer.alloc(64)", Math.round(N / ((performance.now() - t0) / 1000)), "/s");
t0 = performance.now();
for (let i = 0; i < N; i++) Buffer.byteLength("mqtt.client_id");
console.log("byteLength", Math.round(N / ((performance.now() - t0) / 1000)), "/s");
const b = Buffer.alloc(1024);
t0 = performance.now();
for (let i = 0; i < N; i++) b.write("mqtt.client_id", 0, 14, "utf8");
console.log("buf.write", Math.round(N / ((performance.now() - t0) / 1000)), "/s");
const { RecordBatch } = require(base + "protocol/recordBatch/v0/index.js");
const crc = require(base + "protocol/recordBatch/crc32C/index.js");
{ const big = Buffer.alloc(1_000_000); const t0 = performance.now(); for (let i = 0; i < 10; i++) crc(big); console.log("batch crc MB/s", Math.round(10 / ((performance.now() - t0) / 1000))); }
for (const [name, h] of [["none", {}], ["strings", hdrS]] as const) {
  const B = 3000;
  const records = [];
  for (let i = 0; i < B; i++) records.push({ offsetDelta: i, timestampDelta: 0, key: Buffer.from("load/1"), value, headers: h });
  const t0 = performance.now();
  for (let r = 0; r < 5; r++) await RecordBatch({ firstOffset: "0", firstTimestamp: Date.now(), maxTimestamp: Date.now(), records, producerId: 1, producerEpoch: 0, firstSequence: 0 });
  console.log("batch", name, Math.round(5 * B / ((performance.now() - t0) / 1000)), "rec/s");
}
