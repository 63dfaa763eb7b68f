/**
 * How a batch of records crosses from the broker's thread to the producer thread: packed into one
 * ArrayBuffer that is transferred, not copied, with each record already in Kafka's record
 * encoding from the key on (key, value, headers; the "tail"). The producer thread only puts the
 * few per-batch fields in front of each tail (length, timestamp and offset deltas) and copies it
 * into the produce request: no record object, header Map or Buffer per record on either side.
 * A message's tail was written when the bridge accepted it (record_arena.ts) and is copied here
 * as it is; other records (client events, 5.0 messages) are written out here.
 *
 * Layout (little endian): u32 record count, u32 offset of the topic table, then per record
 *   u16 topic index, f64 timestamp (ms), u32 tail length, tail
 * then the topic table: u16 count, (u16 length, UTF-8)*. The tail is Kafka's (record format v2):
 *   key (zigzag varint length, -1 = null; bytes), value (same), zigzag varint header count,
 *   headers (varint length + name, varint length + value)*
 */
import { ByteWriter, readVarint, varintEnd } from "./byte_writer.ts";
import type { HeaderValue } from "./properties.ts";
import type { BridgeRecord, OutRecord } from "./records.ts";

/** A record read back from a packed batch (views into it); what the tests compare. */
export interface WireRecord {
  topic: string;
  key: Uint8Array | null;
  value: Uint8Array;
  timestamp: number;
  /**
   * Header names and values in order, keyed by name objects: a name repeated in one record (5.0
   * user properties) is a distinct object per value, so none collapse.
   */
  headers: Map<Uint8Array, Uint8Array>;
}

/**
 * A batch as batch_sender.ts reads it: per record where its tail is. The producer thread reads
 * one from a packed buffer (readBatch: every tail in `bytes`); the broker's thread builds one
 * straight from the queued records (batch_refs.ts: tails where the bridge wrote them).
 */
export interface PackedBatch {
  /** The packed buffer (readBatch); the first record's source otherwise. */
  bytes: Uint8Array;
  /** Per record, the buffer its tail is in (tailAt/tailLength index into it). */
  sources: Uint8Array[];
  topics: string[];
  count: number;
  topic: Uint16Array;
  timestamp: Float64Array;
  tailAt: Uint32Array;
  tailLength: Uint32Array;
}

/** Per record before its tail: topic index, timestamp, tail length. */
const RECORD_HEAD = 2 + 8 + 4;

function writeHeaderValue(w: ByteWriter, v: string | Uint8Array): void {
  if (typeof v === "string") w.varString(v);
  else w.varBytes(v);
}

/** Writes an OutRecord's tail (repeated headers one after another, in order). */
export function writeRecord(w: ByteWriter, r: OutRecord): void {
  if (r.key === null) w.varint(-1);
  else w.varString(r.key);
  w.varBytes(r.value);
  const h = r.headers;
  let count = 0;
  for (const n in h) {
    const v: HeaderValue = h[n];
    count += Array.isArray(v) ? v.length : 1;
  }
  w.varint(count);
  for (const n in h) {
    const v: HeaderValue = h[n];
    if (Array.isArray(v)) {
      for (const one of v) {
        w.varString(n);
        writeHeaderValue(w, one);
      }
    } else {
      w.varString(n);
      writeHeaderValue(w, v);
    }
  }
}

/**
 * Packs `records` into one transferable buffer: `reuse` when it is big enough (a buffer the
 * producer thread handed back), else a new one. The buffer may be longer than the batch.
 */
export function packBatch(records: readonly BridgeRecord[], reuse?: ArrayBuffer): ArrayBuffer {
  let estimate = 64;
  for (let i = 0; i < records.length; i++) estimate += records[i].bytes + RECORD_HEAD;
  const w = reuse && reuse.byteLength >= estimate
    ? new ByteWriter(0, reuse)
    : new ByteWriter(estimate);
  w.u32le(records.length);
  w.u32le(0); // the topic table's offset, set at the end
  const topics = new Map<string, number>();
  let lastTopic = "";
  let lastIndex = -1;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    // Records of a batch mostly share their topic.
    if (r.topic !== lastTopic || lastIndex < 0) {
      let t = topics.get(r.topic);
      if (t === undefined) {
        t = topics.size;
        topics.set(r.topic, t);
      }
      lastTopic = r.topic;
      lastIndex = t;
    }
    w.u16le(lastIndex);
    w.f64le(r.chunk !== undefined ? r.timestamp : Number(r.timestamp));
    const lengthAt = w.pos;
    w.u32le(0);
    if (r.chunk !== undefined) w.rawFrom(r.chunk, r.at, r.length);
    else writeRecord(w, r);
    w.view.setUint32(lengthAt, w.pos - lengthAt - 4, true);
  }
  w.view.setUint32(4, w.pos, true);
  w.u16le(topics.size);
  const enc = new TextEncoder();
  for (const t of topics.keys()) {
    const b = enc.encode(t);
    w.u16le(b.length);
    w.raw(b);
  }
  return w.buf.buffer as ArrayBuffer;
}

const decoder = new TextDecoder();

/** Reads where each record of a packed batch is, without touching the records themselves. */
export function readBatch(bytes: Uint8Array): PackedBatch {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(0, true);
  let pos = view.getUint32(4, true);
  const topics: string[] = new Array(view.getUint16(pos, true));
  pos += 2;
  for (let i = 0; i < topics.length; i++) {
    const n = view.getUint16(pos, true);
    topics[i] = decoder.decode(bytes.subarray(pos + 2, pos + 2 + n));
    pos += 2 + n;
  }
  const b: PackedBatch = {
    bytes,
    sources: new Array(count).fill(bytes),
    topics,
    count,
    topic: new Uint16Array(count),
    timestamp: new Float64Array(count),
    tailAt: new Uint32Array(count),
    tailLength: new Uint32Array(count),
  };
  pos = 8;
  for (let i = 0; i < count; i++) {
    b.topic[i] = view.getUint16(pos, true);
    b.timestamp[i] = view.getFloat64(pos + 2, true);
    const n = view.getUint32(pos + 10, true);
    b.tailAt[i] = pos + RECORD_HEAD;
    b.tailLength[i] = n;
    pos += RECORD_HEAD + n;
  }
  return b;
}

/** Reads a packed batch back into records (views into `bytes`); tests use it. */
export function unpackBatch(bytes: Uint8Array): WireRecord[] {
  return recordsOf(readBatch(bytes));
}

/** The records of a batch (views into its sources); tests use it. */
export function recordsOf(b: PackedBatch): WireRecord[] {
  const out: WireRecord[] = new Array(b.count);
  let bytes = b.bytes;
  let pos = 0;
  const varint = (): number => {
    const v = readVarint(bytes, pos);
    pos = varintEnd;
    return v;
  };
  const take = (): Uint8Array | null => {
    const n = varint();
    if (n < 0) return null;
    pos += n;
    return bytes.subarray(pos - n, pos);
  };
  for (let i = 0; i < b.count; i++) {
    bytes = b.sources[i];
    pos = b.tailAt[i];
    const key = take();
    const value = take() ?? new Uint8Array();
    const nh = varint();
    const headers = new Map<Uint8Array, Uint8Array>();
    for (let j = 0; j < nh; j++) {
      const n = take()!;
      headers.set(n, take() ?? new Uint8Array());
    }
    out[i] = { topic: b.topics[b.topic[i]], key, value, timestamp: b.timestamp[i], headers };
  }
  return out;
}
