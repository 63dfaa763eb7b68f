import assert from "node:assert/strict";
import {
  Decoder,
  encode,
  type Packet,
  PACKET_TYPE_CODES,
  ProtocolError,
  type ProtocolVersion,
} from "../../src/codec/mod.ts";
import { fixtures, LEVELS } from "./fixtures.ts";
import { concat, mulberry32, randomChunks } from "./helpers.ts";

const RANDOM_STREAMS = 1500;
const MUTATIONS = 2500;
const VALID_TYPES = new Set(Object.keys(PACKET_TYPE_CODES));
const INTERESTING = [0x00, 0x01, 0x02, 0x7f, 0x80, 0xff, 0x23, 0x2b, 0x26, 0x0b, 0xc0, 0xed];

const seed = Number(Deno.env.get("CODEC_FUZZ_SEED") ?? (Date.now() >>> 0));

function int(rand: () => number, n: number): number {
  return Math.floor(rand() * n);
}

function randomBytes(rand: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = int(rand, 256);
  return out;
}

/** Random bytes, often behind a plausible fixed header so the parsers get exercised. */
function randomStream(rand: () => number): Uint8Array {
  const body = randomBytes(rand, int(rand, 80));
  if (rand() < 0.3) return body;
  const type = 1 + int(rand, 15);
  const flags = type === 3
    ? int(rand, 16) & 0b1011
    : type === 6 || type === 8 || type === 10
    ? 2
    : 0;
  return concat([Uint8Array.of((type << 4) | flags, body.length), body]);
}

function mutate(rand: () => number, valid: Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let i = 1 + int(rand, 4); i > 0; i--) parts.push(valid[int(rand, valid.length)]);
  let bytes = concat(parts);
  for (let i = 1 + int(rand, 3); i > 0; i--) {
    const at = int(rand, bytes.length + 1);
    switch (int(rand, 5)) {
      case 0:
        if (at < bytes.length) bytes[at] ^= 1 << int(rand, 8);
        break;
      case 1:
        bytes = bytes.slice(0, at);
        break;
      case 2:
        bytes = concat([
          bytes.subarray(0, at),
          randomBytes(rand, 1 + int(rand, 4)),
          bytes.subarray(at),
        ]);
        break;
      case 3:
        bytes = concat([bytes.subarray(0, at), bytes.subarray(at + 1 + int(rand, 8))]);
        break;
      default:
        if (at < bytes.length) bytes[at] = INTERESTING[int(rand, INTERESTING.length)];
    }
  }
  return bytes;
}

/** Only packets with a known type come out, and only ProtocolError ever goes up. */
function run(level: ProtocolVersion, bytes: Uint8Array, rand: () => number, label: string) {
  const decoder = new Decoder({
    protocolVersion: level,
    maxPacketSize: rand() < 0.1 ? 2 + int(rand, 64) : undefined,
  });
  const onPacket = (p: Packet) => {
    assert.ok(VALID_TYPES.has(p.type), `${label}: emitted ${JSON.stringify(p)}`);
    // Whatever the decoder accepts, the encoder must be able to write back.
    const v = p.type === "connect" ? p.protocolVersion : decoder.protocolVersion;
    encode(p, v === 3 || v === 4 || v === 5 ? v : 4);
  };
  try {
    for (const chunk of randomChunks(bytes, rand, 1 + int(rand, 32))) decoder.push(chunk, onPacket);
  } catch (e) {
    if (!(e instanceof ProtocolError)) {
      const hexBytes = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
      throw new Error(`${label}: ${e} for bytes ${hexBytes} (level ${level}, seed ${seed})`);
    }
  }
}

Deno.test(`decoder survives random and mutated input (seed ${seed})`, () => {
  console.log(`codec fuzz seed ${seed} (rerun with CODEC_FUZZ_SEED=${seed})`);
  const rand = mulberry32(seed);
  for (const level of LEVELS) {
    const valid = fixtures(level).map((p) => encode(p, level));
    for (let i = 0; i < RANDOM_STREAMS; i++) run(level, randomStream(rand), rand, `random ${i}`);
    for (let i = 0; i < MUTATIONS; i++) run(level, mutate(rand, valid), rand, `mutation ${i}`);
  }
});
