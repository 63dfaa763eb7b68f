/**
 * Binary-safe encoding of store values for Redis.
 *
 * Session records (and a message's MQTT 5 properties): a JSON header plus the raw bytes of every
 * Uint8Array in the value (payloads, correlation data, will payloads), so large payloads are
 * neither base64-inflated nor copied through strings. Layout: u32 header length, UTF-8 JSON
 * header, u32 blob count, then per blob u32 length + bytes. Inside the header a Uint8Array is
 * written as {"$b": index}.
 *
 * Messages (retained, and in every queued or in-flight entry) and outbound entries have binary
 * layouts of their own, since they are written once per message and session (see encodeMessage,
 * encodeEntry). They start with a byte the JSON layout never starts with (its u32 header length
 * is below 16 MiB), so values written in the JSON layout by earlier versions still read.
 */
import { Buffer } from "node:buffer";
import type { QoS } from "../codec/packets.ts";
import { utf8Length, writeUtf8 } from "../codec/utf8.ts";
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

/** First byte of a message in the binary layout (encodeMessage). */
const MESSAGE_TAG = 0xb2;
/** First byte of an outbound entry in the binary layout (encodeEntry). */
const ENTRY_TAG = 0xb1;

// Message flags (bits 0-1: QoS).
const RETAIN = 0x04;
const EXPIRES = 0x08;
const ORIGIN = 0x10;
const PROPS = 0x20;
const HAS_DUP = 0x40;
const DUP = 0x80;

// Entry flags (bits 0-1: QoS, bits 4-5: state).
const ENTRY_RETAIN = 0x04;
const PACKET_ID = 0x08;
const SUBSCRIPTION_IDS = 0x40;
const STATES: OutboundEntry["state"][] = ["queued", "sent", "released"];

/** Encoded messages by identity: messages are immutable, and one is often queued many times. */
const messageCache = new WeakMap<StoredMessage, Buffer>();

/**
 * A message: tag, flags, f64 createdAt, [f64 expiresAt], id, topic, [origin] (each a varint
 * length + UTF-8), [properties: varint length + the JSON layout above], then the payload to the
 * end.
 */
export function encodeMessage(m: StoredMessage): Buffer {
  let b = messageCache.get(m);
  if (!b) {
    b = encodeMessageBytes(m);
    messageCache.set(m, b);
  }
  return b;
}

function encodeMessageBytes(m: StoredMessage): Buffer {
  let flags = m.qos | (m.retain ? RETAIN : 0);
  const props = m.properties !== undefined ? encodeValue(m.properties) : null;
  const idLen = utf8Length(m.id);
  const topicLen = utf8Length(m.topic);
  let size = 10 + varintSize(idLen) + idLen + varintSize(topicLen) + topicLen +
    m.payload.byteLength;
  if (m.expiresAt !== undefined) {
    flags |= EXPIRES;
    size += 8;
  }
  let originLen = 0;
  if (m.origin !== undefined) {
    flags |= ORIGIN;
    originLen = utf8Length(m.origin);
    size += varintSize(originLen) + originLen;
  }
  if (props !== null) {
    flags |= PROPS;
    size += varintSize(props.byteLength) + props.byteLength;
  }
  if (m.dup !== undefined) flags |= HAS_DUP | (m.dup ? DUP : 0);
  const out = Buffer.allocUnsafe(size);
  out[0] = MESSAGE_TAG;
  out[1] = flags;
  let o = out.writeDoubleBE(m.createdAt, 2);
  if (m.expiresAt !== undefined) o = out.writeDoubleBE(m.expiresAt, o);
  o = writeUtf8(out, putVarint(out, o, idLen), m.id);
  o = writeUtf8(out, putVarint(out, o, topicLen), m.topic);
  if (m.origin !== undefined) o = writeUtf8(out, putVarint(out, o, originLen), m.origin);
  if (props !== null) {
    o = putVarint(out, o, props.byteLength);
    out.set(props, o);
    o += props.byteLength;
  }
  out.set(m.payload, o);
  return out;
}

export function decodeMessage(buf: Uint8Array): StoredMessage {
  if (buf[0] !== MESSAGE_TAG) return decodeValue<StoredMessage>(buf);
  const r = new Reader(buf, 1);
  const flags = r.u8();
  const createdAt = r.f64();
  const expiresAt = flags & EXPIRES ? r.f64() : undefined;
  const m: StoredMessage = {
    id: r.str(),
    topic: r.str(),
    payload: undefined as unknown as Uint8Array,
    qos: (flags & 3) as QoS,
    retain: (flags & RETAIN) !== 0,
    createdAt,
  };
  if (expiresAt !== undefined) m.expiresAt = expiresAt;
  if (flags & ORIGIN) m.origin = r.str();
  if (flags & PROPS) m.properties = decodeValue(r.bytes(r.varint()));
  if (flags & HAS_DUP) m.dup = (flags & DUP) !== 0;
  // A plain Uint8Array copy: never a Buffer, never a view pinning the reply buffer.
  const payload = r.bytes(buf.byteLength - r.pos);
  m.payload = new Uint8Array(payload.byteLength);
  m.payload.set(payload);
  return m;
}

/**
 * An outbound entry: tag, flags, varint seq, [varint packet id], [varint count + varint
 * Subscription Identifiers], then its message (encodeMessage) to the end.
 */
export function encodeEntry(e: OutboundEntry): Buffer {
  const m = encodeMessage(e.message);
  const state = STATES.indexOf(e.state);
  if (state < 0) throw new Error(`outbound entry in unknown state ${e.state}`);
  let flags = e.qos | (e.retain ? ENTRY_RETAIN : 0) | (state << 4);
  let size = 2 + varintSize(e.seq) + m.byteLength;
  if (e.packetId !== undefined) {
    flags |= PACKET_ID;
    size += varintSize(e.packetId);
  }
  const ids = e.subscriptionIds;
  if (ids !== undefined) {
    flags |= SUBSCRIPTION_IDS;
    size += varintSize(ids.length);
    for (const id of ids) size += varintSize(id);
  }
  const out = Buffer.allocUnsafe(size);
  out[0] = ENTRY_TAG;
  out[1] = flags;
  let o = putVarint(out, 2, e.seq);
  if (e.packetId !== undefined) o = putVarint(out, o, e.packetId);
  if (ids !== undefined) {
    o = putVarint(out, o, ids.length);
    for (const id of ids) o = putVarint(out, o, id);
  }
  out.set(m, o);
  return out;
}

export function decodeEntry(buf: Uint8Array): OutboundEntry {
  if (buf[0] === ENTRY_TAG) {
    const r = new Reader(buf, 1);
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
      retain: (flags & ENTRY_RETAIN) !== 0,
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

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

/** Writes `n` (a non-negative safe integer) as an unsigned LEB128 varint; returns the end. */
function putVarint(b: Uint8Array, o: number, n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${n} is not an unsigned integer`);
  while (n >= 0x80) {
    b[o++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  b[o++] = n;
  return o;
}

/** Reads the binary layouts; every overrun is an error, never a short read. */
class Reader {
  readonly #view: DataView;
  constructor(readonly buf: Uint8Array, public pos: number) {
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  #need(n: number): number {
    const p = this.pos;
    if (p + n > this.buf.byteLength) throw new Error("stored value is truncated");
    this.pos = p + n;
    return p;
  }
  u8(): number {
    return this.buf[this.#need(1)];
  }
  f64(): number {
    return this.#view.getFloat64(this.#need(8));
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
    throw new Error("stored value has an overlong varint");
  }
  /** A view of the next `len` bytes. */
  bytes(len: number): Uint8Array {
    const p = this.#need(len);
    return this.buf.subarray(p, p + len);
  }
  str(): string {
    return dec.decode(this.bytes(this.varint()));
  }
}
