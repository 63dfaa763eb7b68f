/**
 * Byte-level fields of the cluster wire format (wire.ts): MQTT strings (u16 length + UTF-8),
 * unsigned LEB128 varints, big-endian float64, length-prefixed bytes, and a trailing run of
 * bytes. Decoded bytes are always copies.
 */
import { Buffer } from "node:buffer";
import { readUtf8 } from "../codec/utf8.ts";
import { stringSize, writeString } from "../codec/writer.ts";

/**
 * Field writer. The same encoding runs twice: once with `buf` null to measure the frame, once
 * to fill a buffer of exactly that size.
 */
export class Out {
  buf: Buffer | null = null;
  pos = 0;

  u8(n: number): void {
    if (this.buf) this.buf[this.pos] = n;
    this.pos++;
  }
  varint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${n} is not an unsigned integer`);
    while (n >= 0x80) {
      this.u8((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    this.u8(n);
  }
  f64(n: number): void {
    if (this.buf) this.buf.writeDoubleBE(n, this.pos);
    this.pos += 8;
  }
  str(s: string): void {
    if (this.buf) this.pos = writeString(this.buf, this.pos, s);
    else this.pos += stringSize(s);
  }
  bytes(b: Uint8Array): void {
    this.varint(b.byteLength);
    this.rest(b);
  }
  rest(b: Uint8Array): void {
    if (this.buf) this.buf.set(b, this.pos);
    this.pos += b.byteLength;
  }
}

/** Strings up to this many bytes are decoded here when ASCII (see In.str). */
const SHORT = 128;

/** Field reader over one frame; every overrun is an error, never a short read. */
export class In {
  #view: DataView;
  pos = 0;
  constructor(readonly buf: Uint8Array) {
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  #need(n: number): number {
    const p = this.pos;
    if (p + n > this.buf.byteLength) throw new Error("cluster message truncated");
    this.pos = p + n;
    return p;
  }
  u8(): number {
    return this.buf[this.#need(1)];
  }
  varint(): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      n += (b & 0x7f) * scale;
      if (b < 0x80) return n;
      scale *= 0x80;
    }
    throw new Error("cluster message has an overlong varint");
  }
  f64(): number {
    return this.#view.getFloat64(this.#need(8));
  }
  str(): string {
    const len = this.#view.getUint16(this.#need(2));
    const start = this.#need(len);
    if (len <= SHORT) {
      const b = this.buf;
      let ascii = true;
      for (let i = start; i < start + len; i++) {
        if (b[i] >= 0x80) {
          ascii = false;
          break;
        }
      }
      // One flat string: ids and topics are Map keys on the receiving node, and a string built
      // by += (a rope) is flattened again by every lookup (a fifth of its CPU in a profile).
      if (ascii) {
        return String.fromCharCode.apply(
          null,
          b.subarray(start, start + len) as unknown as number[],
        );
      }
    }
    const s = readUtf8(this.buf, start, start + len);
    // readUtf8 refuses what MQTT forbids (NUL); the wire carries whatever was encoded.
    return typeof s === "string"
      ? s
      : new TextDecoder().decode(this.buf.subarray(start, start + len));
  }
  bytes(): Uint8Array {
    return this.#copy(this.varint());
  }
  /** Steps over `len` bytes (a nested frame the caller reads on its own). */
  skip(len: number): void {
    this.#need(len);
  }
  rest(): Uint8Array {
    return this.#copy(this.buf.byteLength - this.pos);
  }
  /** A plain Uint8Array copy: never a Buffer, never a view pinning Redis's reply buffer. */
  #copy(len: number): Uint8Array {
    const start = this.#need(len);
    const b = new Uint8Array(len);
    b.set(this.buf.subarray(start, start + len));
    return b;
  }
}
