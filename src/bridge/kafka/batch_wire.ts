/**
 * How a batch of records crosses from the broker's thread to the producer thread: packed into one
 * ArrayBuffer that is transferred, not copied. Structured cloning an array of record objects cost
 * the broker's thread about as much as the whole produce did, and every header string then had to
 * become a Buffer on the other side anyway; here each string is written once as UTF-8 and the
 * producer thread takes keys, values and headers as views into the same buffer.
 *
 * Layout (little endian): u32 record count, u32 offset of the name table, then per record
 *   str topic, nstr key, bytes value, f64 timestamp (ms), u16 header count, (u16 name, bytes value)*
 * then the name table: u16 count, str name*. str/bytes = u32 length + bytes; nstr uses length
 * 0xffffffff for null. Header names are few and repeat in every record: each is written once per
 * batch, and the producer thread makes one view of it per batch instead of one per record.
 */
import type { HeaderValue } from "./properties.ts";
import type { OutRecord } from "./records.ts";

const NULL = 0xffffffff;
const encoder = new TextEncoder();

/** A record as the producer thread reads it: views into the batch buffer. */
export interface WireRecord {
  topic: string;
  key: Uint8Array | null;
  value: Uint8Array;
  timestamp: number;
  /**
   * Header names and values in order, keyed by name objects: a name repeated in one record (5.0
   * user properties) is a distinct object per value, so none collapse. The client takes this Map
   * as it is.
   */
  headers: Map<Uint8Array, Uint8Array>;
}

/** Writes records into a growing buffer; one instance per batch. */
class Packer {
  buf: Uint8Array;
  view: DataView;
  pos = 0;

  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }

  room(n: number): void {
    if (this.pos + n <= this.buf.byteLength) return;
    let size = this.buf.byteLength * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u32(v: number): void {
    this.room(4);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }

  u16(v: number): void {
    this.room(2);
    this.view.setUint16(this.pos, v, true);
    this.pos += 2;
  }

  str(s: string): void {
    // UTF-8 needs at most 3 bytes per UTF-16 unit.
    this.room(4 + s.length * 3);
    const { written } = encoder.encodeInto(s, this.buf.subarray(this.pos + 4));
    this.view.setUint32(this.pos, written, true);
    this.pos += 4 + written;
  }

  bytes(b: Uint8Array): void {
    this.room(4 + b.byteLength);
    this.view.setUint32(this.pos, b.byteLength, true);
    this.buf.set(b, this.pos + 4);
    this.pos += 4 + b.byteLength;
  }

  headerValue(v: string | Uint8Array): void {
    if (typeof v === "string") this.str(v);
    else this.bytes(v);
  }
}

/** Packs `records` into one transferable buffer (the batch's bytes, plus some slack). */
export function packBatch(records: readonly OutRecord[]): ArrayBuffer {
  let estimate = 4;
  for (let i = 0; i < records.length; i++) estimate += records[i].bytes + 32;
  const p = new Packer(estimate);
  p.u32(records.length);
  p.u32(0); // the name table's offset, set at the end
  const names = new Map<string, number>();
  const nameOf = (name: string): number => {
    let i = names.get(name);
    if (i === undefined) {
      i = names.size;
      names.set(name, i);
    }
    return i;
  };
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    p.str(r.topic);
    if (r.key === null) p.u32(NULL);
    else p.str(r.key);
    p.bytes(r.value);
    p.room(10);
    p.view.setFloat64(p.pos, Number(r.timestamp), true);
    p.pos += 8;
    const countAt = p.pos;
    p.pos += 2;
    let count = 0;
    const h = r.headers;
    for (const name in h) {
      const v: HeaderValue = h[name];
      const n = nameOf(name);
      if (Array.isArray(v)) {
        for (const one of v) {
          p.u16(n);
          p.headerValue(one);
          count++;
        }
      } else {
        p.u16(n);
        p.headerValue(v);
        count++;
      }
    }
    p.view.setUint16(countAt, count, true);
  }
  p.view.setUint32(4, p.pos, true);
  p.u16(names.size);
  for (const name of names.keys()) p.str(name);
  return p.buf.buffer.slice(0, p.pos) as ArrayBuffer;
}

const decoder = new TextDecoder();

/**
 * Reads a packed batch; keys, values and headers are `bytes.subarray()` views, so a Buffer in
 * gives Buffers out (what the Kafka client writes) without a copy.
 */
export function unpackBatch(bytes: Uint8Array): WireRecord[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const take = (): Uint8Array => {
    const n = view.getUint32(pos, true);
    const b = bytes.subarray(pos + 4, pos + 4 + n);
    pos += 4 + n;
    return b;
  };
  let lastTopic = "";
  let lastTopicBytes: Uint8Array | null = null;
  const count = view.getUint32(0, true);
  pos = view.getUint32(4, true);
  const names: Uint8Array[] = new Array(view.getUint16(pos, true));
  pos += 2;
  for (let i = 0; i < names.length; i++) names[i] = take();
  /** Per name, the last record that used it: a repeated name needs its own view (see below). */
  const usedIn = new Int32Array(names.length).fill(-1);
  pos = 8;
  const out: WireRecord[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const t = take();
    // Records of a batch mostly share their topic: decode it only when it changes.
    if (!sameBytes(t, lastTopicBytes)) {
      lastTopic = decoder.decode(t);
      lastTopicBytes = t;
    }
    const topic = lastTopic;
    let key: Uint8Array | null = null;
    if (view.getUint32(pos, true) === NULL) pos += 4;
    else key = take();
    const value = take();
    const timestamp = view.getFloat64(pos, true);
    const nh = view.getUint16(pos + 8, true);
    pos += 10;
    const headers = new Map<Uint8Array, Uint8Array>();
    for (let j = 0; j < nh; j++) {
      const n = view.getUint16(pos, true);
      pos += 2;
      let name = names[n];
      // A name repeated in this record needs its own object, or its values would collapse.
      if (usedIn[n] === i) name = name.subarray(0);
      usedIn[n] = i;
      headers.set(name, take());
    }
    out[i] = { topic, key, value, timestamp, headers };
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array | null): boolean {
  if (b === null || a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
