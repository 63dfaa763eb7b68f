/**
 * Packets split across reads: each connection keeps its partial packet to itself, whatever the
 * other connections send meanwhile (decoders are shared between packets, client.ts).
 */
import assert from "node:assert/strict";
import { encode } from "../../src/codec/encoder.ts";
import { connected, publish, subscribe, text, withBroker } from "./harness.ts";

Deno.test("PUBLISHes split byte by byte on two connections, interleaved, arrive whole", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["split/#", 1]]);
    const a = await connected(b, "a");
    const c = await connected(b, "c", { version: 5 });
    // Two packets each, so that a split starts in the middle of a chunk too.
    const bytesA = [
      ...encode(publish("split/a", "first from a", 1, { packetId: 7 }), 4),
      ...encode(publish("split/a", "x".repeat(300), 0), 4),
    ];
    const bytesC = [
      ...encode(publish("split/c", "first from c", 1, { packetId: 9 }), 5),
      ...encode(publish("split/c", "y".repeat(200), 0), 5),
    ];
    // Byte by byte in turn, then what is left of the longer one with a whole packet's tail.
    const n = Math.max(bytesA.length, bytesC.length);
    for (let i = 0; i < n; i++) {
      if (i < bytesA.length) await a.sendBytes(Uint8Array.of(bytesA[i]));
      if (i < bytesC.length) await c.sendBytes(Uint8Array.of(bytesC[i]));
    }
    const acks = await Promise.all([a.next("puback"), c.next("puback")]);
    assert.deepEqual(acks.map((p) => p.packetId), [7, 9]);
    const got: string[] = [];
    for (let i = 0; i < 4; i++) {
      const p = await sub.next("publish");
      got.push(`${p.topic} ${text(p)}`);
    }
    got.sort();
    assert.deepEqual(got, [
      "split/a first from a",
      `split/a ${"x".repeat(300)}`,
      "split/c first from c",
      `split/c ${"y".repeat(200)}`,
    ]);
    for (const x of [sub, a, c]) x.close();
  });
});
