/**
 * Payloads of BY_REFERENCE_BYTES and more leave by reference behind their PUBLISH header
 * (output.ts); over a transport without writeMany (these in-memory streams) they go one write
 * each, in order with the output around them.
 */
import assert from "node:assert/strict";
import { BY_REFERENCE_BYTES } from "../../src/broker/output_parts.ts";
import { connected, publish, subscribe, withBroker } from "./harness.ts";

function bytes(size: number, fill: number): Uint8Array {
  const b = new Uint8Array(size).fill(fill);
  b[0] = size & 0xff; // distinct ends, so a misplaced slice shows
  b[size - 1] = fill ^ 0xff;
  return b;
}

Deno.test("large and small payloads to one and to several subscribers arrive whole and in order", async () => {
  await withBroker(async (b) => {
    for (const subscribers of [1, 2]) {
      for (const qos of [0, 1] as const) {
        const topic = `big/${subscribers}/${qos}`;
        const subs = [];
        for (let k = 0; k < subscribers; k++) {
          const s = await connected(b, `sub-${subscribers}-${qos}-${k}`);
          await subscribe(s, [[topic, 1]]);
          subs.push(s);
        }
        const pub = await connected(b, `pub-${subscribers}-${qos}`);
        const sizes = [3, BY_REFERENCE_BYTES, 7, BY_REFERENCE_BYTES - 1, 100_000, 1];
        const sent = sizes.map((n, i) => bytes(n, 0x41 + i));
        for (let i = 0; i < sent.length; i++) {
          await pub.send(publish(topic, sent[i], qos, { packetId: i + 1 }));
        }
        for (const s of subs) {
          for (let i = 0; i < sent.length; i++) {
            const p = await s.next("publish");
            assert.deepEqual(p.payload, sent[i], `message ${i} (${sizes[i]} bytes)`);
            if (p.qos === 1) await s.send({ type: "puback", packetId: p.packetId! });
          }
          s.close();
        }
        pub.close();
      }
    }
  });
});
