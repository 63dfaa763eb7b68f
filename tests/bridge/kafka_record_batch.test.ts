/**
 * The bridge writes Kafka's RecordBatch and Produce request itself (record_batch.ts): the bytes
 * must be the ones @platformatic/kafka writes for the same records, and a message written straight
 * from the queue (MessageRef) must be the record messageRecord describes.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { type MessageRecord, produceV11, produceV8 } from "@platformatic/kafka";
import { batchOf } from "../../src/bridge/kafka/batch_refs.ts";
import { packBatch, readBatch, recordsOf, unpackBatch } from "../../src/bridge/kafka/batch_wire.ts";
import { ByteWriter, varintSize } from "../../src/bridge/kafka/byte_writer.ts";
import { murmur2 } from "../../src/bridge/kafka/partitioner.ts";
import { type PartitionBatch, produceRequestBody } from "../../src/bridge/kafka/record_batch.ts";
import {
  type BridgeRecord,
  messageRecord,
  messageRef,
  type OutRecord,
  type RecordContext,
  recordLabel,
} from "../../src/bridge/kafka/records.ts";
import type { ClientInfo, StoredMessage } from "../../src/broker/model.ts";
import { MessageFactory } from "../../src/broker/messages.ts";
import { encodeForwardInto, forwardBound } from "../../src/cluster/wire.ts";
import { Out } from "../../src/cluster/wire_fields.ts";

const ctx = (over: Partial<RecordContext> = {}): RecordContext => ({
  keyMode: "topic",
  format: "raw",
  brokerId: "b",
  nodeId: "node-ü",
  processId: "1",
  ...over,
});

const from = (clientId: string): ClientInfo => ({
  clientId,
  remoteAddress: "127.0.0.1:1",
  transport: "tcp",
  protocolVersion: 4,
});

function msg(i: number, over: Partial<StoredMessage> = {}): StoredMessage {
  return {
    id: `node-ü-lx${i}-${i.toString(36)}`,
    topic: i % 3 === 0 ? `sensors/温度/${i}` : `dev/${i % 5}/state`,
    payload: new Uint8Array(i % 7 === 0 ? 0 : 64 + i).fill(i & 0xff),
    qos: (i % 3) as 0 | 1 | 2,
    retain: i % 2 === 0,
    // Out of order on purpose: deltas may be negative.
    createdAt: 1_700_000_000_000 + ((i * 7919) % 1000),
    origin: "c",
    ...over,
  };
}

/** The record @platformatic/kafka is given for an OutRecord (as the bridge gave it before). */
function clientMessage(r: OutRecord, partition: number): MessageRecord {
  const headers = new Map<Buffer, Buffer>();
  for (const [k, v] of Object.entries(r.headers)) {
    for (const one of Array.isArray(v) ? v : [v]) {
      headers.set(Buffer.from(k), typeof one === "string" ? Buffer.from(one) : one);
    }
  }
  return {
    topic: r.topic,
    partition,
    key: r.key === null ? undefined : Buffer.from(r.key),
    value: r.value,
    headers,
    timestamp: BigInt(r.timestamp),
  } as MessageRecord;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

Deno.test("a message written straight from the queue is the record messageRecord gives", () => {
  const settings = [
    ...(["topic", "client-id", "none"] as const).map((keyMode) => ctx({ keyMode })),
    ctx({ format: "mqttwk-json", brokerId: 'broker "ü"\n', processId: "42" }),
  ];
  for (const c of settings) {
    const refs: BridgeRecord[] = [];
    const full: BridgeRecord[] = [];
    for (let i = 0; i < 60; i++) {
      // Bursts of one publisher on one topic (records that share their headers) and mixes.
      const j = i < 30 ? Math.floor(i / 3) : i;
      const m = msg(i, {
        topic: msg(j).topic,
        retain: j % 2 === 0,
        qos: (j % 3) as 0 | 1 | 2,
        ...(i % 5 === 0 ? { dup: true } : {}),
      });
      const client = j % 4 === 0 ? `client-✓-${j}` : `c${j}`;
      const ref = messageRef(m, client, "out", c)!;
      const rec = messageRecord(m, from(client), "out", c);
      assert.ok(ref, "raw messages without properties become references");
      assert.equal(ref.bytes, rec.bytes, "the same size for the buffer's limits");
      refs.push(ref);
      full.push(rec);
    }
    assert.equal(hex(new Uint8Array(packBatch(refs))), hex(new Uint8Array(packBatch(full))));
  }
});

Deno.test("the id of a message just made is written from its parts, the same record as from its string", () => {
  for (const node of ["n1", "nöde-ü-1"]) {
    const factory = new MessageFactory(node);
    const refs: BridgeRecord[] = [];
    const full: BridgeRecord[] = [];
    for (let i = 1; i <= 1300; i++) {
      const m = factory.create("a/b", new Uint8Array([i & 0xff]), 1, false, "pub-1");
      // Around each new digit, and a few in between.
      if (!(i <= 40 || (i >= 1290 && i <= 1300) || i % 97 === 0)) continue;
      // The cluster may write the same id first (a message both forwarded and bridged).
      if (i % 2 === 0) {
        const out = new Out();
        out.buf = Buffer.alloc(forwardBound(m));
        encodeForwardInto(out, m);
      }
      const ref = messageRef(m, "pub-1", "out", ctx())!;
      refs.push(ref);
      full.push(messageRecord(m, from("pub-1"), "out", ctx()));
    }
    // An older message is written from its id string.
    const older = factory.create("a/b", new Uint8Array(1), 1, false, "pub-1");
    factory.create("a/b", new Uint8Array(1), 1, false, "pub-1");
    refs.push(messageRef(older, "pub-1", "out", ctx())!);
    full.push(messageRecord(older, from("pub-1"), "out", ctx()));
    assert.equal(hex(new Uint8Array(packBatch(refs))), hex(new Uint8Array(packBatch(full))));
  }
});

Deno.test("messages with 5.0 properties are records from the start", () => {
  const withProps = msg(1, { properties: { contentType: "x" } });
  assert.equal(messageRef(withProps, "c", "out", ctx()), null);
});

Deno.test("produce requests are byte for byte the client's: batches, CRC, idempotence, versions", () => {
  const recs: OutRecord[] = [];
  for (let i = 0; i < 30; i++) {
    const m = msg(i, i === 5 ? { properties: { userProperties: [["a", "1"], ["a", "2"]] } } : {});
    const kafkaTopic = i % 4 === 3 ? "t2" : "t1";
    recs.push(
      messageRecord(m, from(`c${i}`), kafkaTopic, ctx({ keyMode: i % 2 ? "topic" : "none" })),
    );
  }
  const early = "1699999999001";
  recs.push({
    topic: "t1",
    key: "",
    value: Buffer.alloc(0),
    headers: {},
    timestamp: early,
    bytes: 70,
  });
  const b = readBatch(new Uint8Array(packBatch(recs)));
  // Partitions as a partitioner might choose them; records keep their order within each.
  const partitionOf = (i: number) => recs[i].topic === "t2" ? 0 : i % 3;
  const batches: PartitionBatch[] = [];
  for (let i = 0; i < recs.length; i++) {
    let pb = batches.find((x) => x.topic === recs[i].topic && x.partition === partitionOf(i));
    if (!pb) {
      pb = { topic: recs[i].topic, partition: partitionOf(i), records: [] };
      batches.push(pb);
    }
    pb.records.push(i);
  }
  const messages = [...recs.keys()].map((i) => clientMessage(recs[i], partitionOf(i)));
  // The client groups by topic, then partition, in order of first appearance, as the bridge does.
  const ordered = batches.map((pb) => pb.records.map((i) => messages[i])).flat();
  const sequences = new Map([["t1:0", 17], ["t1:1", 0], ["t1:2", 2_147_483_000], ["t2:0", 5]]);
  for (const idempotent of [false, true]) {
    for (const pb of batches) {
      const baseSequence = sequences.get(`${pb.topic}:${pb.partition}`)!;
      pb.id = idempotent ? { producerId: 4242n, producerEpoch: 3, baseSequence } : undefined;
    }
    const opts = idempotent
      ? {
        producerId: 4242n,
        producerEpoch: 3,
        sequences: { getWithDefault: (k: string) => sequences.get(k) } as never,
      }
      : {};
    assert.equal(
      hex(produceRequestBody(11, -1, 30_000, b, batches)),
      hex(produceV11.createRequest(-1, 30_000, ordered, opts).buffer),
      `v11, idempotent ${idempotent}`,
    );
    assert.equal(
      hex(produceRequestBody(8, 1, 5_000, b, batches)),
      hex(produceV8.createRequest(1, 5_000, ordered, opts).buffer),
      `v8, idempotent ${idempotent}`,
    );
  }
});

Deno.test("timestamp deltas beyond 32 bits are Kafka's zigzag varlong", () => {
  // (The client's own varlong is only right within 32 bits; the bridge's deltas always are.)
  const reference = (v: bigint) => {
    let u = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
    const out: number[] = [];
    while (u >= 0x80n) {
      out.push(Number(u & 0x7fn) | 0x80);
      u >>= 7n;
    }
    out.push(Number(u));
    return hex(new Uint8Array(out));
  };
  for (
    const v of [0, 1, -1, 63, -64, 2 ** 31, -(2 ** 31) - 1, 1_700_000_000_000, -1_699_999_999_995]
  ) {
    const w = new ByteWriter(16);
    w.varlong(v);
    assert.equal(hex(w.bytes()), reference(BigInt(v)), String(v));
    assert.equal(varintSize(v), w.pos, `size of ${v}`);
  }
});

Deno.test("a packed batch gives its records back, and keys hash where they lie", () => {
  const recs = [0, 1, 2].map((i) => messageRef(msg(i), `c${i}`, "out", ctx())!);
  const bytes = new Uint8Array(packBatch(recs));
  const out = unpackBatch(bytes);
  assert.deepEqual(
    out.map((r) => new TextDecoder().decode(r.key!)),
    recs.map((r) => recordLabel(r)),
  );
  assert.deepEqual(out.map((r) => r.timestamp), recs.map((r) => r.timestamp));
  for (const r of out) {
    const k = r.key!;
    assert.equal(murmur2(bytes, k.byteOffset, k.byteLength), murmur2(k.slice()));
  }
});

Deno.test("a batch read straight from the queue is the packed one: records and request bytes", () => {
  // References (in several arena chunks) mixed with records written out (5.0, events), two topics.
  const recs: BridgeRecord[] = [];
  for (let i = 0; i < 40; i++) {
    const kafkaTopic = i % 4 === 3 ? "t2" : "t1";
    const m = msg(
      i,
      i % 9 === 4 ? { properties: { userProperties: [["a", "1"], ["a", "2"]] } } : {},
    );
    const c = ctx({ keyMode: i % 2 ? "topic" : "none" });
    recs.push(
      messageRef(m, `c${i}`, kafkaTopic, c) ?? messageRecord(m, from(`c${i}`), kafkaTopic, c),
    );
  }
  recs.push({
    topic: "t2",
    key: "",
    value: Buffer.alloc(0),
    headers: {},
    timestamp: "1",
    bytes: 70,
  });
  const direct = batchOf(recs);
  const packed = readBatch(new Uint8Array(packBatch(recs)));
  assert.deepEqual(direct.topics, packed.topics);
  assert.equal(direct.count, packed.count);
  assert.deepEqual([...direct.timestamp], [...packed.timestamp]);
  const norm = (b: typeof direct) =>
    recordsOf(b).map((r) => ({
      ...r,
      key: r.key && hex(r.key),
      value: hex(r.value),
      headers: [...r.headers].map(([k, v]) => [hex(k), hex(v)]),
    }));
  assert.deepEqual(norm(direct), norm(packed));
  const batches: PartitionBatch[] = [];
  for (let i = 0; i < recs.length; i++) {
    const partition = i % 3;
    let pb = batches.find((x) => x.topic === recs[i].topic && x.partition === partition);
    if (!pb) {
      pb = { topic: recs[i].topic, partition, records: [] };
      batches.push(pb);
    }
    pb.records.push(i);
  }
  assert.equal(
    hex(produceRequestBody(11, -1, 30_000, direct, batches)),
    hex(produceRequestBody(11, -1, 30_000, packed, batches)),
  );
});
