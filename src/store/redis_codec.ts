/**
 * Binary-safe encoding of store values for Redis.
 *
 * Session records (and a message's MQTT 5 properties): a JSON header plus the raw bytes of every
 * Uint8Array in the value (payloads, correlation data, will payloads), so large payloads are
 * neither base64-inflated nor copied through strings. Layout: u32 header length, UTF-8 JSON
 * header, u32 blob count, then per blob u32 length + bytes. Inside the header a Uint8Array is
 * written as {"$b": index}.
 *
 * Messages (retained, and in every queued or in-flight entry) are kept as the cluster protocol's
 * "publish" frame (src/cluster/wire.ts: one binary layout of a message for both), outbound entries
 * as a small binary header before it (encodeEntry). Both start with a byte the JSON layout never
 * starts with (its u32 header length is below 16 MiB), so values written in the JSON layout by
 * earlier versions still read.
 */
import { Buffer } from "node:buffer";
import type { QoS } from "../codec/packets.ts";
import type { OutboundEntry, StoredMessage } from "../broker/model.ts";
import { decodeWire, encodeWire } from "../cluster/wire.ts";
import { In, Out } from "../cluster/wire_fields.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeValue(v: unknown): Buffer {
  const blobs: Uint8Array[] = [];
  const json = JSON.stringify(v, function (this: Record<string, unknown>, k: string, x: unknown) {
    const raw = this[k];
    if (raw instanceof Uint8Array) {
      blobs.push(raw);
      return { $b: blobs.length - 1 };
    }
    return x;
  });
  const header = enc.encode(json);
  let size = 8 + header.byteLength;
  for (const b of blobs) size += 4 + b.byteLength;
  const out = Buffer.allocUnsafe(size);
  let o = out.writeUInt32BE(header.byteLength, 0);
  out.set(header, o);
  o += header.byteLength;
  o = out.writeUInt32BE(blobs.length, o);
  for (const b of blobs) {
    o = out.writeUInt32BE(b.byteLength, o);
    out.set(b, o);
    o += b.byteLength;
  }
  return out;
}

export function decodeValue<T>(buf: Uint8Array): T {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const hlen = view.getUint32(0);
  const header = dec.decode(buf.subarray(4, 4 + hlen));
  let o = 4 + hlen;
  const count = view.getUint32(o);
  o += 4;
  const blobs: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const len = view.getUint32(o);
    o += 4;
    // A plain Uint8Array copy: never a Buffer, never a view pinning the reply buffer.
    const b = new Uint8Array(len);
    b.set(buf.subarray(o, o + len));
    blobs.push(b);
    o += len;
  }
  return JSON.parse(header, (_k, x) => {
    if (x !== null && typeof x === "object" && !Array.isArray(x) && typeof x.$b === "number") {
      const keys = Object.keys(x);
      if (keys.length === 1) return blobs[x.$b];
    }
    return x;
  }) as T;
}

/** First byte of an outbound entry in the binary layout (encodeEntry). */
const ENTRY_TAG = 0xb1;

// Entry flags (bits 0-1: QoS, bits 4-5: state).
const RETAIN = 0x04;
const PACKET_ID = 0x08;
const SUBSCRIPTION_IDS = 0x40;
const STATES: OutboundEntry["state"][] = ["queued", "sent", "released"];

/** Encoded messages by identity: messages are immutable, and one is often queued many times. */
const messageCache = new WeakMap<StoredMessage, Buffer>();

/** A message, as the cluster protocol's "publish" frame (first byte 1). */
export function encodeMessage(m: StoredMessage): Buffer {
  let b = messageCache.get(m);
  if (!b) {
    b = encodeWire({ kind: "publish", msg: m });
    messageCache.set(m, b);
  }
  return b;
}

export function decodeMessage(buf: Uint8Array): StoredMessage {
  if (buf[0] === 0) return decodeValue<StoredMessage>(buf); // the JSON layout
  const w = decodeWire(buf);
  if (w.kind !== "publish") throw new Error(`stored message is a cluster "${w.kind}" frame`);
  return w.msg;
}

/**
 * An outbound entry: tag, flags, varint seq, [varint packet id], [varint count + varint
 * Subscription Identifiers], then its message (encodeMessage) to the end.
 */
export function encodeEntry(e: OutboundEntry): Buffer {
  const m = encodeMessage(e.message);
  const o = new Out();
  putEntryHead(o, e);
  const head = o.pos;
  o.buf = Buffer.allocUnsafe(head + m.byteLength);
  o.pos = 0;
  putEntryHead(o, e);
  o.rest(m);
  return o.buf;
}

function putEntryHead(o: Out, e: OutboundEntry): void {
  const state = STATES.indexOf(e.state);
  if (state < 0) throw new Error(`outbound entry in unknown state ${e.state}`);
  const ids = e.subscriptionIds;
  o.u8(ENTRY_TAG);
  o.u8(
    e.qos | (e.retain ? RETAIN : 0) | (state << 4) | (e.packetId !== undefined ? PACKET_ID : 0) |
      (ids !== undefined ? SUBSCRIPTION_IDS : 0),
  );
  o.varint(e.seq);
  if (e.packetId !== undefined) o.varint(e.packetId);
  if (ids !== undefined) {
    o.varint(ids.length);
    for (const id of ids) o.varint(id);
  }
}

export function decodeEntry(buf: Uint8Array): OutboundEntry {
  if (buf[0] === ENTRY_TAG) {
    const r = new In(buf, 1);
    const flags = r.u8();
    const state = STATES[(flags >> 4) & 3];
    if (state === undefined) throw new Error("stored outbound entry has an unknown state");
    const seq = r.varint();
    const packetId = flags & PACKET_ID ? r.varint() : undefined;
    let subscriptionIds: number[] | undefined;
    if (flags & SUBSCRIPTION_IDS) {
      subscriptionIds = [];
      for (let n = r.varint(); n > 0; n--) subscriptionIds.push(r.varint());
    }
    const e: OutboundEntry = {
      seq,
      message: decodeMessage(buf.subarray(r.pos)),
      qos: (flags & 3) as QoS,
      retain: (flags & RETAIN) !== 0,
      state,
    };
    if (packetId !== undefined) e.packetId = packetId;
    if (subscriptionIds !== undefined) e.subscriptionIds = subscriptionIds;
    return e;
  }
  // The JSON layout of earlier versions: u32 header length, JSON of the entry, the message.
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const hlen = view.getUint32(0);
  const head = JSON.parse(dec.decode(buf.subarray(4, 4 + hlen)));
  const e: OutboundEntry = {
    seq: head.seq,
    message: decodeMessage(buf.subarray(4 + hlen)),
    qos: head.qos,
    retain: head.retain,
    state: head.state,
  };
  if (head.packetId !== undefined) e.packetId = head.packetId;
  if (head.subscriptionIds !== undefined) e.subscriptionIds = head.subscriptionIds;
  return e;
}
