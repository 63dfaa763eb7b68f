/**
 * Minimal MQTT 3.1.1 wire helpers for the load generator.
 *
 * Deliberately independent of src/codec: the generator must measure the broker, so it encodes
 * only what it sends (CONNECT, SUBSCRIBE, PUBLISH, PUBACK, PINGREQ, DISCONNECT) with
 * pre-built templates, and parses only what it receives (CONNACK, SUBACK, PUBLISH, PUBACK,
 * PINGRESP) without allocating per message.
 */

const te = new TextEncoder();

export const PINGREQ: Uint8Array = new Uint8Array([0xc0, 0x00]);
export const DISCONNECT: Uint8Array = new Uint8Array([0xe0, 0x00]);

/** Bytes needed for the variable-length "remaining length" field. */
export function remLenSize(n: number): number {
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4;
}

/** Writes the "remaining length" varint at buf[off]; returns the offset after it. */
export function writeRemLen(buf: Uint8Array, off: number, n: number): number {
  do {
    let b = n & 127;
    n >>>= 7;
    if (n > 0) b |= 128;
    buf[off++] = b;
  } while (n > 0);
  return off;
}

export interface ConnectOptions {
  keepAlive?: number;
  clean?: boolean;
}

export function encodeConnect(clientId: string, opts: ConnectOptions = {}): Uint8Array {
  const id = te.encode(clientId);
  const ka = opts.keepAlive ?? 0;
  const clean = opts.clean ?? true;
  const rem = 10 + 2 + id.length;
  const buf = new Uint8Array(1 + remLenSize(rem) + rem);
  let o = 0;
  buf[o++] = 0x10;
  o = writeRemLen(buf, o, rem);
  buf.set([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, clean ? 0x02 : 0x00, ka >> 8, ka & 255], o);
  o += 10;
  buf[o++] = id.length >> 8;
  buf[o++] = id.length & 255;
  buf.set(id, o);
  return buf;
}

export function encodeSubscribe(
  packetId: number,
  subs: { topic: string; qos: number }[],
): Uint8Array {
  const topics = subs.map((s) => te.encode(s.topic));
  const rem = 2 + topics.reduce((a, t) => a + 2 + t.length + 1, 0);
  const buf = new Uint8Array(1 + remLenSize(rem) + rem);
  let o = 0;
  buf[o++] = 0x82;
  o = writeRemLen(buf, o, rem);
  buf[o++] = packetId >> 8;
  buf[o++] = packetId & 255;
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
 * Encodes n acks into one buffer: PUBACKs, or with `firsts` each its own first byte (0x50
 * PUBREC, 0x62 PUBREL, 0x70 PUBCOMP for QoS 2).
 */
export function encodePubacks(
  pids: ArrayLike<number>,
  n = pids.length,
  firsts?: ArrayLike<number>,
): Uint8Array {
  const buf = new Uint8Array(4 * n);
  for (let i = 0, o = 0; i < n; i++, o += 4) {
    const pid = pids[i];
    buf[o] = firsts ? firsts[i] : 0x40;
    buf[o + 1] = 0x02;
    buf[o + 2] = pid >> 8;
    buf[o + 3] = pid & 255;
  }
  return buf;
}

/** Current time in ms since the epoch, sub-microsecond resolution; goes into payloads. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * One PUBLISH packet repeated `n` times in one buffer, with where to patch packet id and
 * timestamp. `props` null: the 3.1.1 form; else the 5.0 form with these property bytes.
 */
export class RepeatedPublish {
  readonly len: number;
  readonly buf: Uint8Array;
  readonly view: DataView;
  readonly pidOff: number;
  readonly tsOff: number;

  constructor(
    topic: Uint8Array,
    qos: number,
    payloadSize: number,
    n: number,
    props: readonly number[] | null = null,
  ) {
    const propsSize = props === null ? 0 : remLenSize(props.length) + props.length;
    const rem = 2 + topic.length + (qos > 0 ? 2 : 0) + propsSize + payloadSize;
    this.len = 1 + remLenSize(rem) + rem;
    const one = new Uint8Array(this.len);
    let o = 0;
    one[o++] = 0x30 | (qos << 1);
    o = writeRemLen(one, o, rem);
    one[o++] = topic.length >> 8;
    one[o++] = topic.length & 255;
    one.set(topic, o);
    o += topic.length;
    this.pidOff = qos > 0 ? o : -1;
    if (qos > 0) o += 2;
    if (props !== null) {
      o = writeRemLen(one, o, props.length);
      one.set(props, o);
      o += props.length;
    }
    this.tsOff = o;
    for (let i = o + 8; i < this.len; i++) one[i] = 0x61 + (i % 26); // filler bytes
    this.buf = new Uint8Array(this.len * n);
    for (let i = 0; i < n; i++) this.buf.set(one, i * this.len);
    this.view = new DataView(this.buf.buffer);
  }

  /**
   * Stamps the first n copies with `ts` and packet ids from `pid` on (QoS > 0); returns the next
   * id. The bytes are buf.subarray(0, n * len).
   */
  stamp(n: number, ts: number, pid: number): number {
    const { len, buf, view, pidOff, tsOff } = this;
    for (let i = 0, o = 0; i < n; i++, o += len) {
      view.setFloat64(o + tsOff, ts, true);
      if (pidOff >= 0) {
        buf[o + pidOff] = pid >> 8;
        buf[o + pidOff + 1] = pid & 255;
        pid = pid === 65535 ? 1 : pid + 1;
      }
    }
    return pid;
  }
}

/**
 * A pre-encoded PUBLISH packet repeated `maxBatch` times in one reusable buffer. `fill` patches
 * timestamps and packet ids only, so a batch of n messages costs n small writes into memory and
 * a single socket write. The caller must not reuse the buffer before the write completed.
 */
export class PublishBatcher {
  readonly packetLen: number;
  readonly qos: number;
  private readonly r: RepeatedPublish;
  private nextPid = 1;

  constructor(topic: string, qos: number, payloadSize: number, readonly maxBatch: number) {
    if (payloadSize < 8) throw new Error("payload must hold the 8-byte timestamp");
    this.qos = qos;
    this.r = new RepeatedPublish(te.encode(topic), qos, payloadSize, maxBatch);
    this.packetLen = this.r.len;
  }

  /** Stamps n messages (n <= maxBatch) with `ts` and fresh packet ids; returns the bytes. */
  fill(n: number, ts: number): Uint8Array {
    this.nextPid = this.r.stamp(n, ts, this.nextPid);
    return this.r.buf.subarray(0, n * this.r.len);
  }
}

/** Callbacks for the parser; `buf` is only valid during the call. */
export interface PacketSink {
  onConnack(returnCode: number): void;
  onSuback(packetId: number, codes: number[]): void;
  /** Called for every PUBLISH; the payload is buf[payloadOff .. payloadOff + payloadLen). */
  onPublish(
    buf: Uint8Array,
    payloadOff: number,
    payloadLen: number,
    qos: number,
    pid: number,
  ): void;
  onPuback(packetId: number): void;
  /** QoS 2 flow: PUBREC (5), PUBREL (6) or PUBCOMP (7) with its packet id. */
  onQos2?(type: number, packetId: number): void;
  onOther(type: number): void;
}

/**
 * The framing both parsers (3.1.1 here, 5.0 in mqtt5_wire.ts) share: joins a packet split across
 * reads and hands each whole one to `packet`, still inside the read's buffer.
 */
export abstract class FrameParser<S> {
  private pending: Uint8Array | null = null;

  feed(chunk: Uint8Array, sink: S): void {
    let buf = chunk;
    if (this.pending) {
      const p = this.pending;
      buf = new Uint8Array(p.length + chunk.length);
      buf.set(p, 0);
      buf.set(chunk, p.length);
      this.pending = null;
    }
    const end = buf.length;
    let off = 0;
    while (end - off >= 2) {
      let i = off + 1;
      let rem = 0;
      let mul = 1;
      let b = 0;
      let complete = true;
      do {
        if (i >= end) {
          complete = false;
          break;
        }
        b = buf[i++];
        rem += (b & 127) * mul;
        mul *= 128;
      } while (b & 128);
      if (!complete || i + rem > end) break;
      this.packet(buf, buf[off], i, rem, sink);
      off = i + rem;
    }
    if (off < end) this.pending = buf.slice(off);
  }

  /** One whole packet: first byte `b0`, the rest at buf[i .. i + rem). */
  protected abstract packet(buf: Uint8Array, b0: number, i: number, rem: number, sink: S): void;
}

/** Incremental MQTT 3.1.1 parser for the packets a client receives. */
export class PacketParser extends FrameParser<PacketSink> {
  protected packet(buf: Uint8Array, b0: number, i: number, rem: number, sink: PacketSink): void {
    const type = b0 >> 4;
    switch (type) {
      case 3: {
        const qos = (b0 >> 1) & 3;
        const tlen = (buf[i] << 8) | buf[i + 1];
        let p = i + 2 + tlen;
        let pid = 0;
        if (qos > 0) {
          pid = (buf[p] << 8) | buf[p + 1];
          p += 2;
        }
        sink.onPublish(buf, p, i + rem - p, qos, pid);
        break;
      }
      case 4:
        sink.onPuback((buf[i] << 8) | buf[i + 1]);
        break;
      case 2:
        sink.onConnack(buf[i + 1]);
        break;
      case 5:
      case 6:
      case 7:
        sink.onQos2?.(type, (buf[i] << 8) | buf[i + 1]);
        break;
      case 9: {
        const codes: number[] = [];
        for (let k = i + 2; k < i + rem; k++) codes.push(buf[k]);
        sink.onSuback((buf[i] << 8) | buf[i + 1], codes);
        break;
      }
      default:
        sink.onOther(type);
    }
  }
}

const tsScratch = new Float64Array(1);
const tsBytes = new Uint8Array(tsScratch.buffer);

/** Reads the little-endian float64 send timestamp at buf[off]. */
export function readTimestamp(buf: Uint8Array, off: number): number {
  for (let k = 0; k < 8; k++) tsBytes[k] = buf[off + k];
  return tsScratch[0];
}
