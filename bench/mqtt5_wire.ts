/**
 * Minimal MQTT 5.0 wire helpers for the load generator, beside the 3.1.1 ones in mqtt_wire.ts.
 *
 * Like those, independent of src/codec (the generator measures the broker, it must not share its
 * code): CONNECT with properties, SUBSCRIBE with an empty property list, PUBLISH templates with a
 * properties length (optionally a Topic Alias: the topic is sent once, then the alias alone), and
 * an incremental parser that reads properties only where it needs them (CONNACK, the Topic Alias
 * of a PUBLISH, reason codes) and resolves the aliases the broker sends without allocating per
 * message. Our PUBACKs stay the 4-byte form, which 5.0 allows for reason code 0x00 without
 * properties (3.4.2.1), so encodePubacks serves both versions.
 */

import {
  FrameParser,
  type PacketSink,
  remLenSize,
  RepeatedPublish,
  writeRemLen,
} from "./mqtt_wire.ts";

const te = new TextEncoder();

/** Property identifiers the generator writes or reads (MQTT 5.0, 2.2.2.2). */
const SESSION_EXPIRY = 0x11;
const RECEIVE_MAXIMUM = 0x21;
const TOPIC_ALIAS_MAXIMUM = 0x22;
const TOPIC_ALIAS = 0x23;

export interface Connect5Options {
  keepAlive?: number;
  /** Clean Start. */
  clean?: boolean;
  /** Session Expiry Interval in seconds (0 = ends with the connection; 0xFFFFFFFF = never). */
  sessionExpiry?: number;
  /** Our Receive Maximum: the broker's QoS 1/2 in-flight window towards us (omitted if absent). */
  receiveMaximum?: number;
  /** Our Topic Alias Maximum: aliases the broker may use towards us (omitted when 0). */
  topicAliasMaximum?: number;
}

/** CONNECT with protocol level 5 and the properties the options ask for. */
export function encodeConnect5(clientId: string, opts: Connect5Options = {}): Uint8Array {
  const id = te.encode(clientId);
  const ka = opts.keepAlive ?? 0;
  const props: number[] = [];
  const expiry = opts.sessionExpiry ?? 0;
  if (expiry > 0) {
    props.push(SESSION_EXPIRY, expiry >>> 24, (expiry >>> 16) & 255, (expiry >>> 8) & 255);
    props.push(expiry & 255);
  }
  const rm = opts.receiveMaximum ?? 0;
  if (rm > 0) props.push(RECEIVE_MAXIMUM, rm >> 8, rm & 255);
  const tam = opts.topicAliasMaximum ?? 0;
  if (tam > 0) props.push(TOPIC_ALIAS_MAXIMUM, tam >> 8, tam & 255);
  const rem = 10 + remLenSize(props.length) + props.length + 2 + id.length;
  const buf = new Uint8Array(1 + remLenSize(rem) + rem);
  let o = 0;
  buf[o++] = 0x10;
  o = writeRemLen(buf, o, rem);
  const flags = (opts.clean ?? true) ? 0x02 : 0x00;
  buf.set([0, 4, 0x4d, 0x51, 0x54, 0x54, 5, flags, ka >> 8, ka & 255], o);
  o += 10;
  o = writeRemLen(buf, o, props.length);
  buf.set(props, o);
  o += props.length;
  buf[o++] = id.length >> 8;
  buf[o++] = id.length & 255;
  buf.set(id, o);
  return buf;
}

/** SUBSCRIBE (5.0): no properties; the options byte carries only the QoS. */
export function encodeSubscribe5(
  packetId: number,
  subs: { topic: string; qos: number }[],
): Uint8Array {
  const topics = subs.map((s) => te.encode(s.topic));
  const rem = 2 + 1 + topics.reduce((a, t) => a + 2 + t.length + 1, 0);
  const buf = new Uint8Array(1 + remLenSize(rem) + rem);
  let o = 0;
  buf[o++] = 0x82;
  o = writeRemLen(buf, o, rem);
  buf[o++] = packetId >> 8;
  buf[o++] = packetId & 255;
  buf[o++] = 0; // property length
  topics.forEach((t, i) => {
    buf[o++] = t.length >> 8;
    buf[o++] = t.length & 255;
    buf.set(t, o);
    o += t.length;
    buf[o++] = subs[i].qos;
  });
  return buf;
}

/**
 * The 5.0 counterpart of PublishBatcher (same contract: `fill` patches timestamps and packet ids
 * into a reusable buffer). With `alias` > 0 the first PUBLISH carries the topic and sets the
 * alias (3.3.2.3.4); every later one carries the alias and an empty topic.
 */
export class Publish5Batcher {
  readonly qos: number;
  private first: RepeatedPublish | null;
  private readonly next: RepeatedPublish;
  private nextPid = 1;

  constructor(
    topic: string,
    qos: number,
    payloadSize: number,
    readonly maxBatch: number,
    alias = 0,
  ) {
    if (payloadSize < 8) throw new Error("payload must hold the 8-byte timestamp");
    this.qos = qos;
    const t = te.encode(topic);
    // `alias` 0: no properties at all; else the first PUBLISH sets it, the rest use it alone.
    const props = alias > 0 ? [TOPIC_ALIAS, alias >> 8, alias & 255] : [];
    this.first = alias > 0 ? new RepeatedPublish(t, qos, payloadSize, 1, props) : null;
    this.next = new RepeatedPublish(
      alias > 0 ? new Uint8Array(0) : t,
      qos,
      payloadSize,
      maxBatch,
      props,
    );
  }

  /** Stamps n messages (n <= maxBatch) with `ts` and fresh packet ids; returns the bytes. */
  fill(n: number, ts: number): Uint8Array {
    const first = this.first;
    if (first !== null) {
      // Once per publisher: the topic-carrying PUBLISH, then the alias-only ones, in a fresh buffer.
      this.first = null;
      this.stamp(first, 1, ts);
      const rest = this.stamp(this.next, n - 1, ts);
      const out = new Uint8Array(first.len + rest.length);
      out.set(first.buf, 0);
      out.set(rest, first.len);
      return out;
    }
    return this.stamp(this.next, n, ts);
  }

  private stamp(r: RepeatedPublish, n: number, ts: number): Uint8Array {
    this.nextPid = r.stamp(n, ts, this.nextPid);
    return r.buf.subarray(0, n * r.len);
  }
}

/** A PacketSink that also hears what only 5.0 reports: failures the run must not hide. */
export interface Packet5Sink extends PacketSink {
  /** A broker DISCONNECT, an error reason code, or an alias that does not resolve. */
  onFailure(what: string): void;
}

/** Reads a variable byte integer at buf[off]: [value, offset after it]. */
function readVarInt(buf: Uint8Array, off: number): [number, number] {
  let v = 0;
  let mul = 1;
  let b = 0;
  do {
    b = buf[off++];
    v += (b & 127) * mul;
    mul *= 128;
  } while (b & 128);
  return [v, off];
}

/** Offset after the value of property `id` starting at buf[off] (MQTT 5.0, 2.2.2.2). */
function skipProperty(buf: Uint8Array, id: number, off: number): number {
  switch (id) {
    case 0x01:
    case 0x17:
    case 0x19:
    case 0x24:
    case 0x25:
    case 0x28:
    case 0x29:
    case 0x2a:
      return off + 1;
    case 0x13:
    case 0x21:
    case 0x22:
    case 0x23:
      return off + 2;
    case 0x02:
    case 0x11:
    case 0x18:
    case 0x27:
      return off + 4;
    case 0x0b:
      return readVarInt(buf, off)[1];
    case 0x26: {
      const k = off + 2 + ((buf[off] << 8) | buf[off + 1]);
      return k + 2 + ((buf[k] << 8) | buf[k + 1]);
    }
    default: // strings and binary data: two-byte length, then the bytes
      return off + 2 + ((buf[off] << 8) | buf[off + 1]);
  }
}

/** Value of a two-byte-integer property in buf[off .. end), or -1 when absent. */
function findUint16(buf: Uint8Array, off: number, end: number, want: number): number {
  while (off < end) {
    const id = buf[off++];
    if (id === want) return (buf[off] << 8) | buf[off + 1];
    off = skipProperty(buf, id, off);
  }
  return -1;
}

/**
 * Incremental MQTT 5.0 parser for the packets a client receives. It keeps the topic aliases the
 * broker set on this connection (at most `topicAliasMaximum`, what our CONNECT allowed) and
 * counts how many PUBLISHes arrived with the alias alone.
 */
export class Packet5Parser extends FrameParser<Packet5Sink> {
  /** The broker's Topic Alias Maximum from CONNACK (0 when absent: no aliases towards it). */
  brokerTopicAliasMaximum = 0;
  /** PUBLISHes whose topic came from an alias alone. */
  aliasedPublishes = 0;
  /** Per alias (index 1..max): a copy of the topic's bytes, only their presence is needed. */
  private readonly aliases: (Uint8Array | null)[];

  constructor(readonly topicAliasMaximum = 0) {
    super();
    this.aliases = new Array(topicAliasMaximum + 1).fill(null);
  }

  protected packet(buf: Uint8Array, b0: number, i: number, rem: number, sink: Packet5Sink): void {
    const stop = i + rem;
    switch (b0 >> 4) {
      case 3:
        this.publish(buf, b0, i, stop, sink);
        break;
      case 4: {
        const rc = rem > 2 ? buf[i + 2] : 0;
        // 0x10 No matching subscribers is a success (3.4.2.1); 0x80 and above are failures.
        if (rc >= 0x80) sink.onFailure(`PUBACK reason code 0x${rc.toString(16)}`);
        sink.onPuback((buf[i] << 8) | buf[i + 1]);
        break;
      }
      case 2: {
        const [plen, p] = readVarInt(buf, i + 2);
        const tam = findUint16(buf, p, p + plen, TOPIC_ALIAS_MAXIMUM);
        this.brokerTopicAliasMaximum = tam < 0 ? 0 : tam;
        sink.onConnack(buf[i + 1]);
        break;
      }
      case 9: {
        const [plen, p] = readVarInt(buf, i + 2);
        const codes: number[] = [];
        for (let k = p + plen; k < stop; k++) codes.push(buf[k]);
        sink.onSuback((buf[i] << 8) | buf[i + 1], codes);
        break;
      }
      case 14: {
        const rc = rem > 0 ? buf[i] : 0;
        sink.onFailure(`broker sent DISCONNECT, reason code 0x${rc.toString(16)}`);
        sink.onOther(14);
        break;
      }
      default:
        sink.onOther(b0 >> 4);
    }
  }

  private publish(buf: Uint8Array, b0: number, i: number, stop: number, sink: Packet5Sink): void {
    const qos = (b0 >> 1) & 3;
    const tlen = (buf[i] << 8) | buf[i + 1];
    const topicOff = i + 2;
    let p = topicOff + tlen;
    let pid = 0;
    if (qos > 0) {
      pid = (buf[p] << 8) | buf[p + 1];
      p += 2;
    }
    let alias = -1;
    let plen = buf[p];
    if (plen === 0) p++; // the usual case: no properties
    else {
      // A one-byte length needs no tuple: nothing allocated per aliased PUBLISH either.
      let q = p + 1;
      if (plen & 128) [plen, q] = readVarInt(buf, p);
      alias = findUint16(buf, q, q + plen, TOPIC_ALIAS);
      p = q + plen;
    }
    if (alias >= 0) {
      if (alias === 0 || alias > this.topicAliasMaximum) {
        // MQTT-3.3.2-8 / -11: never 0, never above the Topic Alias Maximum our CONNECT sent.
        sink.onFailure(`PUBLISH with topic alias ${alias} (our maximum ${this.topicAliasMaximum})`);
      } else if (tlen > 0) {
        // 3.3.2.3.4: a topic with an alias sets or replaces the mapping (slot reused).
        let slot = this.aliases[alias];
        if (slot === null || slot.length !== tlen) {
          slot = this.aliases[alias] = new Uint8Array(tlen);
        }
        slot.set(buf.subarray(topicOff, topicOff + tlen));
      } else if (this.aliases[alias] === null) {
        sink.onFailure(`PUBLISH with topic alias ${alias} that was never set`);
      } else this.aliasedPublishes++;
    } else if (tlen === 0) {
      sink.onFailure("PUBLISH with an empty topic and no topic alias");
    }
    sink.onPublish(buf, p, stop - p, qos, pid);
  }
}
