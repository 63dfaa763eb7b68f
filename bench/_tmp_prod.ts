import { Buffer } from "node:buffer";
import { Producer } from "@platformatic/kafka";
import { javaCompatiblePartitioner } from "../src/bridge/kafka/partitioner.ts";
const p = new Producer<Buffer, Buffer, Buffer, Buffer>({ clientId: "x", bootstrapBrokers: [Deno.args[0]], idempotent: true, autocreateTopics: true, partitioner: javaCompatiblePartitioner() });
await p.initIdempotentProducer({});
const topic = "tmp-" + Date.now();
const names = ["mqtt.topic","mqtt.qos","mqtt.retain","mqtt.client_id","mqttwk.node_id","mqttwk.timestamp","mqttwk.message_id"];
const mk = (i: number) => {
  const h = new Map<Buffer, Buffer>();
  for (const n of names) h.set(Buffer.from(n), Buffer.from("value-" + (i & 7)));
  return { topic, key: Buffer.from("load/" + (i & 7)), value: Buffer.alloc(64, 120), headers: h, timestamp: BigInt(Date.now()) };
};
const N = Number(Deno.args[1] ?? 1000);
import process from "node:process"; const c0 = process.cpuUsage();
let n = 0; const t0 = performance.now();
let enc = 0;
while (performance.now() - t0 < Number(Deno.args[2] ?? 5000)) {
  const msgs = []; for (let i = 0; i < N; i++) msgs.push(mk(i));
  const a = performance.now();
  await p.send({ messages: msgs });
  enc += performance.now() - a;
  n += N;
}
const cu = process.cpuUsage(c0); console.log(`cpu ${((cu.user+cu.system)/n).toFixed(1)} us/rec`);
console.log(`${Math.round(n / ((performance.now() - t0) / 1000))} rec/s, send time share ${(enc/(performance.now()-t0)*100).toFixed(0)}%`);
await p.close();
