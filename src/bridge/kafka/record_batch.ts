/**
 * Kafka's RecordBatch (magic 2) and the body of a Produce request, written from packed records
 * (batch_wire.ts) into one buffer: per record only its length, timestamp delta and offset delta
 * are written; the rest is its tail, copied. Same bytes as @platformatic/kafka writes for the same
 * records (no compression, CreateTime), in a fraction of the time.
 */
import { Buffer } from "node:buffer";
import { crc32c } from "@platformatic/kafka";
import { ByteWriter, varintSize } from "./byte_writer.ts";
import type { PackedBatch } from "./batch_wire.ts";

/** Bytes of a RecordBatch before its first record. */
const BATCH_HEADER = 61;
/** Offset of the CRC and of the attributes (where the CRC starts) in a RecordBatch. */
const CRC_AT = 17;
const ATTRIBUTES_AT = 21;

/** Who writes: producer id, epoch and the batch's first sequence (-1n/0/0 without idempotence). */
export interface BatchIdentity {
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
}

/** One partition's records of a packed batch: indices into it, in order. */
export interface PartitionBatch {
  topic: string;
  partition: number;
  records: number[];
  /** The encoded RecordBatch, once written. */
  bytes?: Uint8Array;
}

/** Writes the RecordBatch of `pb.records` (sets pb.bytes). */
export function encodeRecordBatch(b: PackedBatch, pb: PartitionBatch, id: BatchIdentity): void {
  const recs = pb.records;
  const n = recs.length;
  let size = BATCH_HEADER;
  for (let i = 0; i < n; i++) size += b.tailLength[recs[i]] + 25;
  const w = new ByteWriter(size);
  const first = b.timestamp[recs[0]];
  let max = first;
  for (let i = 0; i < n; i++) if (b.timestamp[recs[i]] > max) max = b.timestamp[recs[i]];
  const v = w.view;
  v.setBigInt64(0, 0n); // base offset
  // 8: batch length, 17: CRC, set below
  v.setInt32(12, 0); // partition leader epoch (the broker sets it)
  v.setInt8(16, 2); // magic
  v.setInt16(ATTRIBUTES_AT, 0);
  v.setInt32(23, n - 1); // last offset delta
  v.setBigInt64(27, BigInt(Math.trunc(first)));
  v.setBigInt64(35, BigInt(Math.trunc(max)));
  v.setBigInt64(43, id.producerId);
  v.setInt16(51, id.producerEpoch);
  v.setInt32(53, id.baseSequence);
  v.setInt32(57, n);
  w.pos = BATCH_HEADER;
  const src = b.bytes;
  for (let i = 0; i < n; i++) {
    const r = recs[i];
    const len = b.tailLength[r];
    const delta = b.timestamp[r] - first;
    const body = 1 + varintSize(delta) + varintSize(i) + len;
    w.varint(body);
    w.u8(0); // attributes
    w.varlong(delta);
    w.varint(i);
    w.rawFrom(src, b.tailAt[r], len);
  }
  // The view again: the buffer is sized for the worst case, but never trust that.
  w.view.setInt32(8, w.pos - 12);
  w.view.setUint32(CRC_AT, crc32c(w.buf.subarray(ATTRIBUTES_AT, w.pos)));
  pb.bytes = w.bytes();
}

/** Rewrites who wrote an encoded batch (after a new producer id), with its CRC. */
export function restampRecordBatch(bytes: Uint8Array, id: BatchIdentity): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  v.setBigInt64(43, id.producerId);
  v.setInt16(51, id.producerEpoch);
  v.setInt32(53, id.baseSequence);
  v.setUint32(CRC_AT, crc32c(bytes.subarray(ATTRIBUTES_AT)));
}

const encoder = new TextEncoder();

/** Unsigned varint (the protocol's, for compact lengths). */
function uvarint(w: ByteWriter, v: number): void {
  w.room(5);
  while (v >= 0x80) {
    w.buf[w.pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  w.buf[w.pos++] = v;
}

/**
 * The body of a Produce request (after the request header) for `batches`, in the layout of
 * `version`: 3-8 with int16/int32 lengths, 9+ flexible (compact lengths, empty tagged fields).
 */
export function produceRequestBody(
  version: number,
  acks: number,
  timeoutMs: number,
  batches: readonly PartitionBatch[],
): Buffer {
  const byTopic = new Map<string, PartitionBatch[]>();
  let size = 32;
  for (const pb of batches) {
    let list = byTopic.get(pb.topic);
    if (list === undefined) {
      list = [];
      byTopic.set(pb.topic, list);
      size += pb.topic.length * 3 + 16;
    }
    list.push(pb);
    size += pb.bytes!.length + 16;
  }
  const flexible = version >= 9;
  const w = new ByteWriter(size);
  const v = () => w.view;
  if (flexible) uvarint(w, 0); // transactional id: null
  else {
    w.room(2);
    v().setInt16(w.pos, -1);
    w.pos += 2;
  }
  w.room(6);
  v().setInt16(w.pos, acks);
  v().setInt32(w.pos + 2, timeoutMs);
  w.pos += 6;
  const int32 = (x: number) => {
    w.room(4);
    v().setInt32(w.pos, x);
    w.pos += 4;
  };
  if (flexible) uvarint(w, byTopic.size + 1);
  else int32(byTopic.size);
  for (const [topic, list] of byTopic) {
    const name = encoder.encode(topic);
    if (flexible) uvarint(w, name.length + 1);
    else {
      w.room(2);
      v().setInt16(w.pos, name.length);
      w.pos += 2;
    }
    w.raw(name);
    if (flexible) uvarint(w, list.length + 1);
    else int32(list.length);
    for (const pb of list) {
      int32(pb.partition);
      const bytes = pb.bytes!;
      if (flexible) uvarint(w, bytes.length + 1);
      else int32(bytes.length);
      w.raw(bytes);
      if (flexible) uvarint(w, 0); // partition's tagged fields
    }
    if (flexible) uvarint(w, 0); // topic's tagged fields
  }
  if (flexible) uvarint(w, 0); // request's tagged fields
  return Buffer.from(w.buf.buffer, 0, w.pos);
}
