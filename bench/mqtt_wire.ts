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

/** Encodes n PUBACKs into one buffer. */
export function encodePubacks(pids: ArrayLike<number>, n = pids.length): Uint8Array {
  const buf = new Uint8Array(4 * n);
  for (let i = 0, o = 0; i < n; i++, o += 4) {
    const pid = pids[i];
    buf[o] = 0x40;
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
 * A pre-encoded PUBLISH packet repeated `maxBatch` times in one reusable buffer. `fill` patches
 * timestamps and packet ids only, so a batch of n messages costs n small writes into memory and
 * a single socket write. The caller must not reuse the buffer before the write completed.
 */
export class PublishBatcher {
  readonly packetLen: number;
  readonly qos: number;
  private readonly buf: Uint8Array;
  private readonly view: DataView;
  private readonly pidOff: number;
  private readonly tsOff: number;
  private nextPid = 1;

  constructor(topic: string, qos: number, payloadSize: number, readonly maxBatch: number) {
    if (payloadSize < 8) throw new Error("payload must hold the 8-byte timestamp");
    const t = te.encode(topic);
    const rem = 2 + t.length + (qos > 0 ? 2 : 0) + payloadSize;
    this.packetLen = 1 + remLenSize(rem) + rem;
    this.qos = qos;
    const one = new Uint8Array(this.packetLen);
    let o = 0;
    one[o++] = 0x30 | (qos << 1);
    o = writeRemLen(one, o, rem);
    one[o++] = t.length >> 8;
    one[o++] = t.length & 255;
    one.set(t, o);
    o += t.length;
    this.pidOff = qos > 0 ? o : -1;
    if (qos > 0) o += 2;
    this.tsOff = o;
    for (let i = o + 8; i < this.packetLen; i++) one[i] = 0x61 + (i % 26); // filler bytes
    this.buf = new Uint8Array(this.packetLen * maxBatch);
    for (let i = 0; i < maxBatch; i++) this.buf.set(one, i * this.packetLen);
    this.view = new DataView(this.buf.buffer);
  }

  /** Stamps n messages (n <= maxBatch) with `ts` and fresh packet ids; returns the bytes. */
  fill(n: number, ts: number): Uint8Array {
    const len = this.packetLen;
    const buf = this.buf;
    const view = this.view;
    for (let i = 0, o = 0; i < n; i++, o += len) {
      view.setFloat64(o + this.tsOff, ts, true);
      if (this.pidOff >= 0) {
        const pid = this.nextPid;
        this.nextPid = pid === 65535 ? 1 : pid + 1;
        buf[o + this.pidOff] = pid >> 8;
        buf[o + this.pidOff + 1] = pid & 255;
      }
    }
    return buf.subarray(0, n * len);
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
  onOther(type: number): void;
}

/** Incremental MQTT 3.1.1 parser for the packets a client receives. */
export class PacketParser {
  private pending: Uint8Array | null = null;

  feed(chunk: Uint8Array, sink: PacketSink): void {
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
      const b0 = buf[off];
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
        case 9: {
          const codes: number[] = [];
          for (let k = i + 2; k < i + rem; k++) codes.push(buf[k]);
          sink.onSuback((buf[i] << 8) | buf[i + 1], codes);
          break;
        }
        default:
          sink.onOther(type);
      }
      off = i + rem;
    }
    if (off < end) this.pending = buf.slice(off);
  }
}

const tsScratch = new Float64Array(1);
const tsBytes = new Uint8Array(tsScratch.buffer);

/** Reads the little-endian float64 send timestamp at buf[off]. */
export function readTimestamp(buf: Uint8Array, off: number): number {
  for (let k = 0; k < 8; k++) tsBytes[k] = buf[off + k];
  return tsScratch[0];
}
