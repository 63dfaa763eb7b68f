/** Primitive writes into a buffer the encoder sized exactly beforehand. */
import { utf8Length, writeUtf8 } from "./utf8.ts";

export const MAX_VBI = 268_435_455;

export function vbiLength(n: number): number {
  if (n < 128) return 1;
  if (n < 16_384) return 2;
  if (n < 2_097_152) return 3;
  if (n <= MAX_VBI) return 4;
  throw new RangeError(`${n} does not fit a variable byte integer`);
}

export function writeVbi(buf: Uint8Array, pos: number, n: number): number {
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    buf[pos++] = b;
  } while (n > 0);
  return pos;
}

export function writeU16(buf: Uint8Array, pos: number, n: number): number {
  buf[pos] = (n >> 8) & 0xff;
  buf[pos + 1] = n & 0xff;
  return pos + 2;
}

export function writeU32(buf: Uint8Array, pos: number, n: number): number {
  buf[pos] = (n >>> 24) & 0xff;
  buf[pos + 1] = (n >>> 16) & 0xff;
  buf[pos + 2] = (n >>> 8) & 0xff;
  buf[pos + 3] = n & 0xff;
  return pos + 4;
}

/** Wire size of a UTF-8 Encoded String, length prefix included. */
export function stringSize(s: string): number {
  const n = utf8Length(s);
  if (n > 0xffff) throw new RangeError(`string of ${n} bytes exceeds the 65535-byte MQTT limit`);
  return n + 2;
}

/** Wire size of Binary Data, length prefix included. */
export function binarySize(b: Uint8Array): number {
  if (b.length > 0xffff) {
    throw new RangeError(`binary data of ${b.length} bytes exceeds the 65535-byte MQTT limit`);
  }
  return b.length + 2;
}

/** Writes the string then backfills its length, so no second pass over the characters. */
export function writeString(buf: Uint8Array, pos: number, s: string): number {
  const end = writeUtf8(buf, pos + 2, s);
  writeU16(buf, pos, end - pos - 2);
  return end;
}

export function writeBinary(buf: Uint8Array, pos: number, b: Uint8Array): number {
  pos = writeU16(buf, pos, b.length);
  buf.set(b, pos);
  return pos + b.length;
}
