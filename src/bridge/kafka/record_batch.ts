/**
 * The body of a Produce request with its RecordBatches (magic 2), written from a batch's records
 * (batch_wire.ts, batch_refs.ts) into one buffer of the exact size: per record only its length, timestamp delta
 * and offset delta are written; the rest is its tail, copied. Same bytes as @platformatic/kafka
 * writes for the same records (no compression, CreateTime), in a fraction of the time
 * (tests/bridge/kafka_record_batch.test.ts compares them).
 */
import { Buffer } from "node:buffer";
import { crc32c } from "@platformatic/kafka";
import { ByteWriter, varintSize } from "./byte_writer.ts";
import type { PackedBatch } from "./batch_wire.ts";

/** Bytes of a RecordBatch before its first record. */
const BATCH_HEADER = 61;
/** Offsets in a RecordBatch of its length, its CRC and its attributes (where the CRC starts). */
const LENGTH_AT = 8;
const CRC_AT = 17;
const ATTRIBUTES_AT = 21;

/** Who writes: producer id, epoch and the batch's first sequence (-1n/0/0 without idempotence). */
export interface BatchIdentity {
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
}

/** One partition's records of a packed batch (indices into it, in order) and who writes them. */
export interface PartitionBatch {
  topic: string;
  partition: number;
  records: number[];
  id?: BatchIdentity;
}

/** Bytes of the RecordBatch of `pb` (a dry run of writeRecordBatch). */
function batchSize(b: PackedBatch, pb: PartitionBatch): number {
  const recs = pb.records;
  const first = b.timestamp[recs[0]];
  let size = BATCH_HEADER;
  for (let i = 0; i < recs.length; i++) {
    const r = recs[i];
    const body = 1 + varintSize(b.timestamp[r] - first) + varintSize(i) + b.tailLength[r];
    size += varintSize(body) + body;
  }
  return size;
}

/** Writes the RecordBatch of `pb` at w.pos. */
function writeRecordBatch(w: ByteWriter, b: PackedBatch, pb: PartitionBatch): void {
  const id = pb.id ?? { producerId: -1n, producerEpoch: 0, baseSequence: 0 };
  const recs = pb.records;
  const n = recs.length;
  const first = b.timestamp[recs[0]];
  let max = first;
  for (let i = 0; i < n; i++) if (b.timestamp[recs[i]] > max) max = b.timestamp[recs[i]];
  const at = w.pos;
  w.room(BATCH_HEADER);
  const v = w.view;
  v.setBigInt64(at, 0n); // base offset
  // LENGTH_AT and CRC_AT are set at the end.
  v.setInt32(at + 12, 0); // partition leader epoch (the broker sets it)
  v.setInt8(at + 16, 2); // magic
  v.setInt16(at + ATTRIBUTES_AT, 0);
  v.setInt32(at + 23, n - 1); // last offset delta
  v.setBigInt64(at + 27, BigInt(Math.trunc(first)));
  v.setBigInt64(at + 35, BigInt(Math.trunc(max)));
  v.setBigInt64(at + 43, id.producerId);
  v.setInt16(at + 51, id.producerEpoch);
  v.setInt32(at + 53, id.baseSequence);
  v.setInt32(at + 57, n);
  w.pos = at + BATCH_HEADER;
  const sources = b.sources;
  for (let i = 0; i < n; i++) {
    const r = recs[i];
    const len = b.tailLength[r];
    const delta = b.timestamp[r] - first;
    w.varint(1 + varintSize(delta) + varintSize(i) + len);
    w.u8(0); // attributes
    w.varlong(delta);
    w.varint(i);
    w.rawFrom(sources[r], b.tailAt[r], len);
  }
  // The view again: room() may have grown the buffer (it is sized exactly, but never trust that).
  w.view.setInt32(at + LENGTH_AT, w.pos - at - 12);
  w.view.setUint32(at + CRC_AT, crc32c(w.buf.subarray(at + ATTRIBUTES_AT, w.pos)));
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

function int16(w: ByteWriter, v: number): void {
  w.room(2);
  w.view.setInt16(w.pos, v);
  w.pos += 2;
}

function int32(w: ByteWriter, v: number): void {
  w.room(4);
  w.view.setInt32(w.pos, v);
  w.pos += 4;
}

/**
 * The body of a Produce request (after the request header) with the RecordBatches of `batches`,
 * in the layout of `version`: 3-8 with int16/int32 lengths, 9+ flexible (compact lengths, empty
 * tagged fields).
 */
export function produceRequestBody(
  version: number,
  acks: number,
  timeoutMs: number,
  b: PackedBatch,
  batches: readonly PartitionBatch[],
): Buffer {
  const byTopic = new Map<string, { name: Uint8Array; batches: PartitionBatch[] }>();
  const sizes = new Map<PartitionBatch, number>();
  let size = 16;
  for (const pb of batches) {
    let t = byTopic.get(pb.topic);
    if (t === undefined) {
      t = { name: encoder.encode(pb.topic), batches: [] };
      byTopic.set(pb.topic, t);
      size += t.name.length + 16;
    }
    t.batches.push(pb);
    const n = batchSize(b, pb);
    sizes.set(pb, n);
    size += n + 16;
  }
  const flexible = version >= 9;
  const w = new ByteWriter(size);
  if (flexible) uvarint(w, 0); // transactional id: null
  else int16(w, -1);
  int16(w, acks);
  int32(w, timeoutMs);
  if (flexible) uvarint(w, byTopic.size + 1);
  else int32(w, byTopic.size);
  for (const t of byTopic.values()) {
    if (flexible) uvarint(w, t.name.length + 1);
    else int16(w, t.name.length);
    w.raw(t.name);
    if (flexible) uvarint(w, t.batches.length + 1);
    else int32(w, t.batches.length);
    for (const pb of t.batches) {
      int32(w, pb.partition);
      const n = sizes.get(pb)!;
      if (flexible) uvarint(w, n + 1);
      else int32(w, n);
      writeRecordBatch(w, b, pb);
      if (flexible) uvarint(w, 0); // partition's tagged fields
    }
    if (flexible) uvarint(w, 0); // topic's tagged fields
  }
  if (flexible) uvarint(w, 0); // request's tagged fields
  return Buffer.from(w.buf.buffer, 0, w.pos);
}
