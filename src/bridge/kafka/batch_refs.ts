/**
 * A batch for batch_sender.ts straight from the queued records, on the broker's thread (the
 * inline producer): each record's tail stays where the bridge wrote it when it accepted the
 * message (record_arena.ts; its chunks are never rewritten), so nothing is packed into a
 * transfer buffer and read back, which only the producer thread needs (batch_wire.ts). Records
 * without a written tail (client events, 5.0 messages) are written out here, one buffer each.
 */
import { type PackedBatch, writeRecord } from "./batch_wire.ts";
import { ByteWriter } from "./byte_writer.ts";
import type { BridgeRecord } from "./records.ts";

/** The batch of `records`, in their order; the same records readBatch(packBatch(records)) gives. */
export function batchOf(records: readonly BridgeRecord[]): PackedBatch {
  const count = records.length;
  const sources: Uint8Array[] = new Array(count);
  const topic = new Uint16Array(count);
  const timestamp = new Float64Array(count);
  const tailAt = new Uint32Array(count);
  const tailLength = new Uint32Array(count);
  const topics: string[] = [];
  let lastTopic = "";
  let lastIndex = -1;
  for (let i = 0; i < count; i++) {
    const r = records[i];
    // Records of a batch mostly share their topic.
    if (r.topic !== lastTopic || lastIndex < 0) {
      lastIndex = topics.indexOf(r.topic);
      if (lastIndex < 0) lastIndex = topics.push(r.topic) - 1;
      lastTopic = r.topic;
    }
    topic[i] = lastIndex;
    if (r.chunk !== undefined) {
      sources[i] = r.chunk;
      timestamp[i] = r.timestamp;
      tailAt[i] = r.at;
      tailLength[i] = r.length;
    } else {
      const w = new ByteWriter(r.bytes);
      writeRecord(w, r);
      sources[i] = w.buf;
      timestamp[i] = Number(r.timestamp);
      tailAt[i] = 0;
      tailLength[i] = w.pos;
    }
  }
  return {
    bytes: sources[0] ?? new Uint8Array(),
    sources,
    topics,
    count,
    topic,
    timestamp,
    tailAt,
    tailLength,
  };
}
