import assert from "node:assert/strict";
import { Decoder, encode, type Packet, type ProtocolVersion } from "../../src/codec/mod.ts";
import { fixtures, LEVELS } from "./fixtures.ts";
import { concat, mulberry32, randomChunks } from "./helpers.ts";

/** One CONNECT to set the level, then every other fixture of that level, three times over. */
function stream(level: ProtocolVersion): { bytes: Uint8Array; packets: Packet[] } {
  const all = fixtures(level);
  const first = all.find((p) => p.type === "connect")!;
  const rest = all.filter((p) => p.type !== "connect");
  const packets = [first, ...rest, ...rest, ...rest];
  return { bytes: concat(packets.map((p) => encode(p, level))), packets };
}

function feed(chunks: Uint8Array[]): Packet[] {
  // Starts at the default level: the stream's CONNECT must switch it.
  const decoder = new Decoder();
  const out: Packet[] = [];
  for (const chunk of chunks) decoder.push(chunk, (p) => out.push(p));
  return out;
}

for (const level of LEVELS) {
  Deno.test(`level ${level} stream decodes the same whole, byte by byte and in random chunks`, () => {
    const { bytes, packets } = stream(level);
    const original = bytes.slice();
    assert.deepEqual(feed([bytes]), packets);
    const single: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i++) single.push(bytes.subarray(i, i + 1));
    assert.deepEqual(feed(single), packets);
    const seed = 0xc0dec + level;
    const rand = mulberry32(seed);
    for (let round = 0; round < 20; round++) {
      const chunks = randomChunks(bytes, rand, round < 10 ? 8 : 4096);
      assert.deepEqual(feed(chunks), packets, `seed ${seed} round ${round}`);
    }
    assert.deepEqual(bytes, original, "input chunks must not be mutated");
  });
}

Deno.test("remaining length split across chunks is reassembled", () => {
  const packet: Packet = {
    type: "publish",
    topic: "t",
    payload: new Uint8Array(20_000).fill(3),
    qos: 0,
    retain: false,
    dup: false,
  };
  const bytes = encode(packet, 4); // 3-byte remaining length
  for (let cut = 1; cut <= 4; cut++) {
    assert.deepEqual(feed([bytes.subarray(0, cut), bytes.subarray(cut)]), [packet]);
  }
});

Deno.test("a packet split across chunks is assembled into a buffer of exactly its size", () => {
  const bytes = encode({
    type: "publish",
    topic: "t",
    payload: Uint8Array.of(1, 2, 3, 4),
    qos: 0,
    retain: false,
    dup: false,
  }, 4);
  const out = feed([bytes.subarray(0, 5), bytes.subarray(5)]);
  const p = out[0];
  assert.ok(p.type === "publish");
  // Body = topic (3 bytes) + payload (4 bytes).
  assert.equal(p.payload.buffer.byteLength, 7);
});

Deno.test("zero-length packets at the very end of a chunk are emitted", () => {
  const out = feed([Uint8Array.of(0xc0), Uint8Array.of(0x00, 0xd0, 0x00)]);
  assert.deepEqual(out, [{ type: "pingreq" }, { type: "pingresp" }]);
});
