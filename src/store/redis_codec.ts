/**
 * Binary-safe encoding of store values for Redis: a JSON header plus the raw bytes of every
 * Uint8Array in the value (payloads, correlation data, will payloads), so large payloads are
 * neither base64-inflated nor copied through strings.
 *
 * Layout: u32 header length, UTF-8 JSON header, u32 blob count, then per blob u32 length + bytes.
 * Inside the header a Uint8Array is written as {"$b": index}.
 */
import { Buffer } from "node:buffer";
import type { OutboundEntry, StoredMessage } from "../broker/model.ts";

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

/** Encoded messages by identity: messages are immutable, and one is often queued many times. */
const messageCache = new WeakMap<StoredMessage, Buffer>();

export function encodeMessage(m: StoredMessage): Buffer {
  let b = messageCache.get(m);
  if (!b) {
    b = encodeValue(m);
    messageCache.set(m, b);
  }
  return b;
}

export function decodeMessage(buf: Uint8Array): StoredMessage {
  return decodeValue<StoredMessage>(buf);
}

/** An outbound entry: u32 header length, JSON of the entry without its message, message bytes. */
export function encodeEntry(e: OutboundEntry): Buffer {
  const head: Record<string, unknown> = {
    seq: e.seq,
    qos: e.qos,
    retain: e.retain,
    state: e.state,
  };
  if (e.packetId !== undefined) head.packetId = e.packetId;
  if (e.subscriptionIds !== undefined) head.subscriptionIds = e.subscriptionIds;
  const h = enc.encode(JSON.stringify(head));
  const m = encodeMessage(e.message);
  const out = Buffer.allocUnsafe(4 + h.byteLength + m.byteLength);
  out.writeUInt32BE(h.byteLength, 0);
  out.set(h, 4);
  out.set(m, 4 + h.byteLength);
  return out;
}

export function decodeEntry(buf: Uint8Array): OutboundEntry {
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
