import assert from "node:assert/strict";
import { encodePublish, publishSizeV4, writePublishV4 } from "../../src/codec/encoder.ts";
import type { QoS } from "../../src/codec/packets.ts";
import { utf8Length } from "../../src/codec/utf8.ts";

const enc = new TextEncoder();

function inPlace(topic: string, payload: Uint8Array, qos: QoS, retain: boolean, pid: number) {
  const topicBytes = utf8Length(topic);
  const size = publishSizeV4(topicBytes, payload.length, qos);
  // Written after a prefix, as into a connection's output buffer.
  const buf = new Uint8Array(3 + size + 2).fill(0xee);
  const end = writePublishV4(buf, 3, topic, topicBytes, payload, qos, retain, pid);
  assert.equal(end, 3 + size, "returns the end of what it wrote");
  assert.deepEqual([...buf.subarray(0, 3)], [0xee, 0xee, 0xee], "prefix untouched");
  assert.deepEqual([...buf.subarray(end)], [0xee, 0xee], "nothing written past the end");
  return buf.subarray(3, end);
}

Deno.test("a PUBLISH written in place equals the encoder's, for every QoS, RETAIN and size", () => {
  const payloads = [0, 1, 100, 127, 200, 16_383, 16_500, 70_000].map((n) =>
    Uint8Array.from({ length: n }, (_, i) => i & 0xff)
  );
  for (const topic of ["a", "bench/p2p/7", "héllo/wörld/€/𝄞", "x".repeat(300)]) {
    for (const payload of payloads) {
      for (const qos of [0, 1, 2] as QoS[]) {
        for (const retain of [false, true]) {
          const pid = qos > 0 ? 0xbeef : 0;
          const want = encodePublish(
            {
              type: "publish",
              topic,
              payload,
              qos,
              retain,
              dup: false,
              packetId: pid || undefined,
            },
            4,
          ).bytes;
          assert.deepEqual(inPlace(topic, payload, qos, retain, pid), want, `${topic} ${qos}`);
        }
      }
    }
  }
});

Deno.test("publishSizeV4 refuses a topic longer than an MQTT string can be", () => {
  assert.throws(() => publishSizeV4(0x10000, 0, 0), RangeError);
  assert.equal(publishSizeV4(enc.encode("t").length, 0, 0), 5);
});
