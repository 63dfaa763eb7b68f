/** Shared by the codec tests: byte builders, a seeded PRNG and decode helpers. */
import assert from "node:assert/strict";
import { Decoder, type Packet, ProtocolError, type ProtocolVersion } from "../../src/codec/mod.ts";

/** "30 07 00 03" → bytes. */
export function hex(s: string): Uint8Array {
  const parts = s.trim().split(/\s+/).filter((p) => p.length > 0);
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

/** MQTT UTF-8 string: 2-byte length then the bytes. */
export function str(s: string): number[] {
  const b = new TextEncoder().encode(s);
  return [b.length >> 8, b.length & 0xff, ...b];
}

/** Length-prefixed raw bytes, for hand-made ill-formed strings. */
export function raw(...bytes: number[]): number[] {
  return [bytes.length >> 8, bytes.length & 0xff, ...bytes];
}

/** A whole packet from its first byte and body, remaining length computed. */
export function packet(first: number, ...body: (number | number[])[]): Uint8Array {
  const flat = body.flat();
  const len: number[] = [];
  let n = flat.length;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    len.push(b);
  } while (n > 0);
  return Uint8Array.from([first, ...len, ...flat]);
}

export function decodeAll(
  bytes: Uint8Array,
  protocolVersion: ProtocolVersion = 4,
  maxPacketSize?: number,
): Packet[] {
  const out: Packet[] = [];
  new Decoder({ protocolVersion, maxPacketSize }).push(bytes, (p) => out.push(p));
  return out;
}

export function assertProtocolError(
  fn: () => unknown,
  reasonCode: number,
  statement: string,
): ProtocolError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ProtocolError, `expected ProtocolError, got ${caught}`);
  assert.equal(
    caught.statement,
    statement,
    `statement: ${caught.message}`,
  );
  assert.equal(
    caught.reasonCode,
    reasonCode,
    `reason code 0x${caught.reasonCode.toString(16)}: ${caught.message}`,
  );
  return caught;
}

/** Decoding `bytes` at `level` must fail with this reason code and statement. */
export function assertRejects(
  bytes: Uint8Array,
  level: ProtocolVersion,
  reasonCode: number,
  statement: string,
): ProtocolError {
  return assertProtocolError(() => decodeAll(bytes, level), reasonCode, statement);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

export { mulberry32 } from "../helpers/random.ts";

/** Splits `bytes` at random points into chunks (possibly empty ones). */
export function randomChunks(bytes: Uint8Array, rand: () => number, maxChunk = 16): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const n = Math.floor(rand() * (maxChunk + 1));
    chunks.push(bytes.subarray(pos, Math.min(bytes.length, pos + n)));
    pos += n;
  }
  return chunks;
}
