/**
 * The one message format of the cluster link. Everything nodes exchange through Redis — pub/sub
 * channels, stream entries, the wills kept for survivors — is a WireMessage, written by
 * encodeWire and read by decodeWire.
 *
 * Compact binary: a tag byte naming the kind, then that kind's fields in a fixed order. Strings
 * are MQTT strings (u16 byte length + UTF-8), counts and property numbers unsigned varints
 * (LEB128), times float64, other bytes a varint length + the bytes. A message's payload comes
 * last and runs to the end of the frame: it is copied once each way, never re-encoded, so
 * forwarding costs a few header bytes over the payload. The layouts of a message, a kept will and
 * properties are in wire_message.ts; this file frames them, alone or in batches.
 */
import { Buffer } from "node:buffer";
import type { StoredMessage } from "../broker/model.ts";
import type { KeptWill } from "../broker/ports/cluster.ts";
import { idParts, In, Out } from "./wire_fields.ts";
import { getMessage, getWill, putMessage, putProperties, putWill } from "./wire_message.ts";

export { idParts };

/** Every message of the cluster protocol. */
export type WireMessage =
  /** An application message for the receiving node's local subscribers (channel or stream). */
  | { kind: "publish"; msg: StoredMessage }
  /**
   * An application message for one member of the receiving node's shared group `share` only
   * (the sending node picked this node); `hops`: how often it was passed on already.
   */
  | { kind: "publish-shared"; share: string; hops: number; msg: StoredMessage }
  /**
   * An application message for the receiving node's local sessions `clientIds` only: a copy
   * passed on for sessions that moved there (their other subscribers had theirs).
   */
  | { kind: "publish-to"; clientIds: string[]; msg: StoredMessage }
  /** `node` has a first local subscriber to `filter`. */
  | { kind: "route-added"; node: string; filter: string }
  /** `node` lost its last local subscriber to `filter`. */
  | { kind: "route-removed"; node: string; filter: string }
  /** `node` replaced its whole route table: read it again. */
  | { kind: "routes-reset"; node: string }
  /** A retained message was set (or, with null, deleted) on node `from`. */
  | { kind: "retained"; from: string; topic: string; msg: StoredMessage | null }
  /** `node` was taken over: forget its routes. */
  | { kind: "node-gone"; node: string }
  /** Node `from` asks the holder of `clientId` to release it, answering to request `req`. */
  | { kind: "release"; clientId: string; from: string; req: string }
  /** The session asked for by request `req` was released. */
  | { kind: "released"; req: string }
  /** A clean-session client's will, kept for whichever node takes its node over. */
  | { kind: "will"; kept: KeptWill }
  /**
   * Several messages in one stream entry or one channel message, in the order they were sent
   * (see outbox.ts): what crosses Redis is batched. Never nested.
   */
  | { kind: "batch"; messages: WireMessage[] };

/** The kinds, as WireMessage["kind"] values. */
export type WireKind = WireMessage["kind"];

const TAGS: Record<WireKind, number> = {
  "publish": 1,
  "route-added": 2,
  "route-removed": 3,
  "routes-reset": 4,
  "retained": 5,
  "node-gone": 6,
  "release": 7,
  "released": 8,
  "will": 9,
  "publish-shared": 10,
  "batch": 11,
  "publish-to": 12,
};
const KINDS: WireKind[] = [];
for (const [k, t] of Object.entries(TAGS)) KINDS[t] = k as WireKind;

/** Encodes one message of the cluster protocol. */
export function encodeWire(m: WireMessage): Buffer {
  const out = new Out();
  put(out, m);
  const size = out.pos;
  out.buf = Buffer.allocUnsafe(size);
  out.pos = 0;
  put(out, m);
  return out.buf;
}

/**
 * At least the size of the "publish" frame of `msg` (with `share`: the "publish-shared" one),
 * without measuring strings: a UTF-16 unit takes at most 3 bytes of UTF-8. Properties, rare,
 * are measured.
 */
export function forwardBound(msg: StoredMessage, share?: string): number {
  let max = 40 + msg.payload.byteLength +
    3 * (msg.id.length + msg.topic.length + (msg.origin?.length ?? 0));
  if (share !== undefined) max += 12 + 3 * share.length;
  if (msg.properties !== undefined) {
    const size = new Out();
    putProperties(size, msg.properties);
    max += size.pos;
  }
  return max;
}

/**
 * Writes the "publish" frame of `msg` (with `share`: "publish-shared" for that group, passed on
 * `hops` times already) at `o.pos`, in one pass: `o.buf` must have forwardBound bytes there.
 * The outbox encodes forwarded messages straight into its batches this way; encodeWire sizes a
 * frame exactly in a first pass and allocates it (a third of the encoding's CPU on a node
 * forwarding 200k msg/s, then the batch copied it once more).
 */
export function encodeForwardInto(o: Out, msg: StoredMessage, share?: string, hops = 0): void {
  if (share === undefined) o.u8(TAGS.publish);
  else {
    o.u8(TAGS["publish-shared"]);
    o.str(share);
    o.varint(hops);
  }
  putMessage(o, msg);
}

/**
 * Bytes before the first frame of a batch that is built frame by frame (outbox.ts): the tag and
 * the count, a varint written in two bytes (a count below 16,384) once the count is known.
 */
export const BATCH_HEADER = 3;

/** Writes the batch header of `count` frames (below 16,384) at the start of `buf`. */
export function writeBatchHeader(buf: Uint8Array, count: number): void {
  if (count >= 0x4000) throw new RangeError(`a batch of ${count} frames`);
  buf[0] = TAGS.batch;
  buf[1] = (count & 0x7f) | 0x80;
  buf[2] = count >> 7;
}

/** Whether `frame` is a batch (which no batch may hold). */
export function isBatch(frame: Uint8Array): boolean {
  return frame[0] === TAGS.batch;
}

/**
 * A "batch" frame of already encoded frames (none a batch itself): each one is copied once,
 * after its length, so a message encoded once for several nodes is not encoded again.
 */
export function encodeBatch(frames: readonly Uint8Array[]): Buffer {
  const out = new Out();
  putFrames(out, frames);
  out.buf = Buffer.allocUnsafe(out.pos);
  out.pos = 0;
  putFrames(out, frames);
  return out.buf;
}

function putFrames(o: Out, frames: readonly Uint8Array[]): void {
  o.u8(TAGS.batch);
  o.varint(frames.length);
  for (const f of frames) {
    if (f[0] === TAGS.batch) throw new Error("cluster: a batch inside a batch");
    o.bytes(f);
  }
}

/**
 * The messages of a frame: those of a "batch" in their order, or the frame's own message.
 * Each is decoded alone, so one bad frame in a batch costs only itself (`bad` hears of it).
 *
 * A batch is copied once, whole, and its messages' payloads are views into that copy: one
 * allocation per batch instead of one per message. What outlives the turn (queued or in flight)
 * is compacted by the core like a payload read from a client's socket. `each` must not keep the
 * WireMessage itself (the message in it is its own): a "publish" one is the same object refilled,
 * not one more object per forwarded message.
 */
export function decodeFrames(
  buf: Uint8Array,
  each: (m: WireMessage) => void,
  bad: (e: unknown) => void,
): void {
  if (buf[0] !== TAGS.batch) {
    let m: WireMessage;
    try {
      m = decodeFrom(new In(buf), true);
    } catch (e) {
      return bad(e);
    }
    return each(m);
  }
  const own = new Uint8Array(buf.byteLength);
  own.set(buf);
  const total = own.byteLength;
  const r = new In(own, 0, total, true);
  let count: number;
  try {
    r.u8();
    count = r.varint();
  } catch (e) {
    return bad(e);
  }
  for (; count > 0; count--) {
    let start: number;
    let end: number;
    try {
      const len = r.varint();
      start = r.pos;
      r.skip(len);
      end = r.pos;
    } catch (e) {
      // A length that cannot be trusted leaves nothing after it readable.
      return bad(e);
    }
    let m: WireMessage;
    try {
      r.frame(start, end);
      m = decodeInner(r, true);
    } catch (e) {
      r.frame(end, total);
      bad(e);
      continue;
    }
    r.frame(end, total);
    each(m);
  }
}

/** The message of the frame `r` reads (inside a batch: never a batch itself). */
function decodeInner(r: In, marked: boolean): WireMessage {
  if (r.buf[r.pos] === TAGS.batch) throw new Error("cluster message: a batch inside a batch");
  return decodeFrom(r, marked);
}

/** Decodes what encodeWire wrote; throws on anything else. */
export function decodeWire(buf: Uint8Array): WireMessage {
  return decodeFrom(new In(buf), false);
}

function decodeFrom(r: In, marked: boolean): WireMessage {
  const tag = r.u8();
  const kind = KINDS[tag];
  switch (kind) {
    case "batch": {
      const messages: WireMessage[] = [];
      const end = r.end;
      for (let n = r.varint(); n > 0; n--) {
        const len = r.varint();
        const start = r.pos;
        r.skip(len);
        r.frame(start, start + len);
        messages.push(decodeInner(r, marked));
        r.frame(start + len, end);
      }
      if (r.pos !== end) throw new Error("cluster message: bytes after a batch");
      return { kind, messages };
    }
    case "publish":
      if (marked) {
        // For decodeFrames (never a batch here: it takes batches apart itself).
        REUSED_PUBLISH.msg = getMessage(r, true);
        return REUSED_PUBLISH;
      }
      return { kind, msg: getMessage(r, false) };
    case "publish-shared":
      return { kind, share: r.str(), hops: r.varint(), msg: getMessage(r, marked) };
    case "publish-to": {
      const clientIds: string[] = [];
      for (let n = r.varint(); n > 0; n--) clientIds.push(r.str());
      return { kind, clientIds, msg: getMessage(r, marked) };
    }
    case "route-added":
    case "route-removed":
      return { kind, node: r.str(), filter: r.str() };
    case "routes-reset":
    case "node-gone":
      return { kind, node: r.str() };
    case "retained": {
      const present = r.u8() === 1;
      return { kind, from: r.str(), topic: r.str(), msg: present ? getMessage(r, false) : null };
    }
    case "release":
      return { kind, clientId: r.str(), from: r.str(), req: r.str() };
    case "released":
      return { kind, req: r.str() };
    case "will":
      return { kind, kept: getWill(r) };
    default:
      throw new Error(`unknown cluster message tag ${tag}`);
  }
}

function put(o: Out, m: WireMessage): void {
  o.u8(TAGS[m.kind]);
  switch (m.kind) {
    case "publish":
      return putMessage(o, m.msg);
    case "publish-shared":
      o.str(m.share);
      o.varint(m.hops);
      return putMessage(o, m.msg);
    case "publish-to":
      o.varint(m.clientIds.length);
      for (const id of m.clientIds) o.str(id);
      return putMessage(o, m.msg);
    case "route-added":
    case "route-removed":
      o.str(m.node);
      return o.str(m.filter);
    case "routes-reset":
    case "node-gone":
      return o.str(m.node);
    case "retained":
      o.u8(m.msg ? 1 : 0);
      o.str(m.from);
      o.str(m.topic);
      if (m.msg) putMessage(o, m.msg);
      return;
    case "release":
      o.str(m.clientId);
      o.str(m.from);
      return o.str(m.req);
    case "released":
      return o.str(m.req);
    case "will":
      return putWill(o, m.kept);
    case "batch":
      o.varint(m.messages.length);
      for (const inner of m.messages) {
        if (inner.kind === "batch") throw new Error("cluster: a batch inside a batch");
        o.bytes(encodeWire(inner));
      }
  }
}

/** The "publish" WireMessage decodeFrames hands out, refilled for each message (see there). */
const REUSED_PUBLISH: { kind: "publish"; msg: StoredMessage } = {
  kind: "publish",
  msg: undefined as unknown as StoredMessage,
};
