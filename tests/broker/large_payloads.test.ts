/**
 * Large payloads go out as they are, after what was buffered before them (output_parts.ts
 * LARGE_OUTPUT): every message arrives whole and in order, small and large mixed, to one
 * subscriber (written straight) and to several (shared encodings), at QoS 0 and 1.
 */
import assert from "node:assert/strict";
import type { PublishPacket, QoS } from "../../src/codec/packets.ts";
import { connected, publish, subscribe, withBroker } from "./harness.ts";

/** A payload whose bytes say which message it is and where in it they are. */
function payload(i: number, size: number): Uint8Array {
  const p = new Uint8Array(size);
  for (let k = 0; k < size; k++) p[k] = (i * 31 + k) & 0xff;
  return p;
}

const SIZES = [10, 70_000, 20, 16 * 1024, 100_000, 5, 200_000, 300];

for (const qos of [0, 1] as QoS[]) {
  Deno.test(`QoS ${qos}: small and large payloads mixed arrive whole and in order, to one and to two subscribers`, async () => {
    await withBroker(async (b) => {
      const one = await connected(b, `one-${qos}`);
      await subscribe(one, [["big/one", qos]]);
      const twoA = await connected(b, `two-a-${qos}`);
      const twoB = await connected(b, `two-b-${qos}`);
      await subscribe(twoA, [["big/two", qos]]);
      await subscribe(twoB, [["big/two", qos]]);
      const pub = await connected(b, `pub-${qos}`);
      for (const topic of ["big/one", "big/two"]) {
        for (let i = 0; i < SIZES.length; i++) {
          await pub.send(publish(topic, payload(i, SIZES[i]), qos, { packetId: i + 1 }));
        }
      }
      for (const [c, topic] of [[one, "big/one"], [twoA, "big/two"], [twoB, "big/two"]] as const) {
        for (let i = 0; i < SIZES.length; i++) {
          const p = (await c.next("publish")) as PublishPacket;
          assert.equal(p.topic, topic);
          assert.equal(p.qos, qos);
          assert.deepEqual(p.payload, payload(i, SIZES[i]), `${topic} message ${i}`);
          if (qos === 1) await c.send({ type: "puback", packetId: p.packetId! });
        }
      }
      for (const c of [one, twoA, twoB, pub]) c.close();
    });
  });
}
