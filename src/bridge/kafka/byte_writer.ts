/**
 * A growable byte buffer with the encodings of Kafka's record format (zigzag varints, length-
 * prefixed bytes and strings). Records are written field by field straight into one buffer:
 * no object, Buffer or string per field, which is what made a record cost microseconds.
 */

const encoder = new TextEncoder();

/** Bytes of `v` as a zigzag varint or varlong (Kafka's signed ones), for any safe integer. */
export function varintSize(v: number): number {
  let u = v >= -0x40000000 && v < 0x40000000
    ? ((v << 1) ^ (v >> 31)) >>> 0
    : (v >= 0 ? v * 2 : -v * 2 - 1);
  let n = 1;
  while (u >= 0x80) {
    u = Math.floor(u / 0x80);
    n++;
  }
  return n;
}

export class ByteWriter {
  buf: Uint8Array;
  view: DataView;
  pos = 0;

  /** A new buffer of `size` bytes, or `reuse` as it is (a buffer handed back for another turn). */
  constructor(size: number, reuse?: ArrayBuffer) {
    this.buf = reuse ? new Uint8Array(reuse) : new Uint8Array(Math.max(64, size));
    this.view = new DataView(this.buf.buffer);
  }

  /** Makes room for `n` more bytes. */
  room(n: number): void {
    if (this.pos + n > this.buf.length) this.#grow(n);
  }

  #grow(n: number): void {
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
  }

  /** Little endian (the hand-over format between threads). */
  u16le(v: number): void {
    this.room(2);
    this.view.setUint16(this.pos, v, true);
    this.pos += 2;
  }

  u32le(v: number): void {
    this.room(4);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }

  f64le(v: number): void {
    this.room(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  /** Zigzag varint (Kafka's signed varint, int32 range). */
  varint(v: number): void {
    this.room(5);
    let u = ((v << 1) ^ (v >> 31)) >>> 0;
    const b = this.buf;
    let p = this.pos;
    while (u >= 0x80) {
      b[p++] = (u & 0x7f) | 0x80;
      u >>>= 7;
    }
    b[p++] = u;
    this.pos = p;
  }

  /** Zigzag varlong for any safe integer (Kafka's timestamp deltas are 64-bit). */
  varlong(v: number): void {
    if (v >= -0x40000000 && v < 0x40000000) return this.varint(v);
    let u = v >= 0 ? v * 2 : -v * 2 - 1;
    this.room(10);
    while (u >= 0x80) {
      this.buf[this.pos++] = (u % 0x80) | 0x80;
      u = Math.floor(u / 0x80);
    }
    this.buf[this.pos++] = u;
  }

  /** Bytes as they are. Short runs are copied by hand: set() costs more than it saves there. */
  raw(src: Uint8Array): void {
    const n = src.length;
    this.room(n);
    if (n > 24) {
      this.buf.set(src, this.pos);
    } else {
      const b = this.buf;
      const p = this.pos;
      for (let i = 0; i < n; i++) b[p + i] = src[i];
    }
    this.pos += n;
  }

  /** `n` bytes of `src` from `start`. */
  rawFrom(src: Uint8Array, start: number, n: number): void {
    this.room(n);
    if (n > 64) {
      this.buf.set(src.subarray(start, start + n), this.pos);
    } else {
      const b = this.buf;
      const p = this.pos;
      for (let i = 0; i < n; i++) b[p + i] = src[start + i];
    }
    this.pos += n;
  }

  /** Length (zigzag varint) and bytes; null as length -1. */
  varBytes(src: Uint8Array | null): void {
    if (src === null) return this.varint(-1);
    this.varint(src.length);
    this.raw(src);
  }

  /** Length (zigzag varint) and UTF-8 bytes; ASCII up to 63 characters takes the quick way. */
  varString(s: string): void {
    const n = s.length;
    if (n < 64) {
      this.room(n + 1);
      const b = this.buf;
      const p = this.pos;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        b[p + 1 + i] = c;
      }
      if (i === n) {
        b[p] = n << 1;
        this.pos = p + 1 + n;
        return;
      }
    }
    this.varBytes(encoder.encode(s));
  }

  /** A non-negative integer (a timestamp in ms) as decimal ASCII, length-prefixed like a string. */
  varDecimal(v: number): void {
    if (!(v >= 0 && v <= Number.MAX_SAFE_INTEGER && Math.floor(v) === v)) {
      return this.varString(String(v));
    }
    let digits = 1;
    for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++;
    this.varint(digits);
    this.room(digits);
    const b = this.buf;
    let x = v;
    for (let p = this.pos + digits - 1; p >= this.pos; p--) {
      const q = Math.floor(x / 10);
      b[p] = 48 + x - q * 10;
      x = q;
    }
    this.pos += digits;
  }

  /** The written bytes (a view). */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

/** Strings written again and again (topics, client ids) as ready length-prefixed UTF-8. */
export class FieldCache {
  readonly #map = new Map<string, Uint8Array>();
  readonly #max: number;

  constructor(max = 10_000) {
    this.#max = max;
  }

  get(s: string): Uint8Array {
    let b = this.#map.get(s);
    if (b === undefined) {
      const w = new ByteWriter(s.length * 3 + 5);
      w.varString(s);
      b = w.buf.slice(0, w.pos);
      // Client ids and topics with ids in them are unbounded: start over rather than grow.
      if (this.#map.size >= this.#max) this.#map.clear();
      this.#map.set(s, b);
    }
    return b;
  }
}

/** Reads a zigzag varint at `pos` of `b`; returns the value and sets `varintEnd`. */
export let varintEnd = 0;
export function readVarint(b: Uint8Array, pos: number): number {
  let u = 0;
  let shift = 0;
  let c: number;
  do {
    c = b[pos++];
    u |= (c & 0x7f) << shift;
    shift += 7;
  } while (c & 0x80);
  varintEnd = pos;
  return (u >>> 1) ^ -(u & 1);
}
