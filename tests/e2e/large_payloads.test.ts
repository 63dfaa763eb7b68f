/**
 * Large payloads over real TCP with mqtt.js: they leave the broker by reference behind their
 * PUBLISH header (src/broker/output.ts, BY_REFERENCE_BYTES), in one write with what surrounds
 * them; every byte and the order of small and large messages must survive that.
 */
import assert from "node:assert/strict";
import { scoped, startBroker, uid } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";

/** Message i: its number, then a run of one letter, `size` characters in all. */
function payload(i: number, size: number): string {
  const head = `${i}:`;
  return head + String.fromCharCode(97 + (i % 26)).repeat(Math.max(0, size - head.length));
}

// Small, above and below the by-reference threshold (16 KiB), and larger than a socket read.
const SIZES = [10, 70_000, 20, 17_000, 16_000, 200_000, 5];

Deno.test("small and large payloads interleaved reach one and several subscribers whole and in order", async () => {
  const broker = await startBroker();
  try {
    for (const subscribers of [1, 3]) {
      for (const qos of [0, 1] as const) {
        await scoped(async (defer) => {
          const topic = `${uid("large")}/s${subscribers}/q${qos}`;
          const subs = [];
          for (let k = 0; k < subscribers; k++) {
            const sub = await connectMqttJs(broker.url);
            defer(sub.close);
            assert.deepEqual(await sub.subscribe(topic, 1), [1]);
            subs.push(sub);
          }
          const pub = await connectMqttJs(broker.url);
          defer(pub.close);
          const sent: string[] = [];
          for (let i = 0; i < 3 * SIZES.length; i++) {
            const p = payload(i, SIZES[i % SIZES.length]);
            sent.push(p);
            // Not awaited one by one at QoS 0: several land in one turn of the broker.
            const done = pub.publish(topic, p, { qos });
            if (qos === 1) await done;
          }
          for (const sub of subs) {
            const got = await sub.inbox.waitForCount(sent.length, (m) => m.topic === topic);
            assert.equal(got.length, sent.length);
            for (let i = 0; i < sent.length; i++) {
              assert.ok(
                got[i].payload === sent[i],
                `message ${i} (${sent[i].length} bytes) intact`,
              );
            }
          }
        });
      }
    }
  } finally {
    await broker.stop();
  }
});
