/**
 * Byte-level fields of the cluster wire format (wire.ts): MQTT strings (u16 length + UTF-8),
 * unsigned LEB128 varints, big-endian float64, length-prefixed bytes, and a trailing run of
 * bytes. Decoded bytes are copies, or views into a frame the reader owns (see In).
 */
import { Buffer } from "node:buffer";
import { readUtf8, writeUtf8 } from "../codec/utf8.ts";
import { stringSize } from "../codec/writer.ts";

/**
 * Field writer. Either the same encoding runs twice, once with `buf` null to measure the frame
 * and once to fill a buffer of exactly that size, or it runs once into a buffer known to be
 * large enough (a forwarded message, straight into the outbox's batch).
 */
export class Out {
  buf: Buffer | null = null;
  pos = 0;

  u8(n: number): void {
    if (this.buf) this.buf[this.pos] = n;
    this.pos++;
  }
  varint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${n} is not an unsigned integer`);
    while (n >= 0x80) {
      this.u8((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    this.u8(n);
  }
  f64(n: number): void {
    if (this.buf) this.buf.writeDoubleBE(n, this.pos);
    this.pos += 8;
  }
  str(s: string): void {
    const b = this.buf;
    if (!b) {
      this.pos += stringSize(s);
      return;
    }
    // Written first, its length backfilled: no pass over the characters just to measure them.
    const start = this.pos;
    const end = writeUtf8(b, start + 2, s);
    const n = end - start - 2;
    if (n > 0xffff) throw new RangeError(`string of ${n} bytes exceeds the 65535-byte MQTT limit`);
    b[start] = n >> 8;
    b[start + 1] = n & 0xff;
    this.pos = end;
  }
  bytes(b: Uint8Array): void {
    this.varint(b.byteLength);
    this.rest(b);
  }
  rest(b: Uint8Array): void {
    if (this.buf) this.buf.set(b, this.pos);
    this.pos += b.byteLength;
  }
}

/**
 * The parts of the id In.id() read last, when it is node-made (`<prefix><base-36 counter>`):
 * the same prefix and counter RecentIds derives from the whole id string, handed over without
 * taking that string apart again (counter -1: an id of another form). One object, overwritten
 * by every id read: read it right after the message is decoded.
 */
export const idParts = { prefix: "", counter: -1 };

/** Longest id counter in base-36 digits that idParts reports (as RecentIds does). */
const MAX_ID_DIGITS = 10;

/** Strings up to this many bytes are decoded here when ASCII (see In.str). */
const SHORT = 128;

/**
 * Topics decoded lately, by a hash of their bytes (direct-mapped, one slot each): a batch of
 * forwarded messages mostly repeats a few topics, and the same string object each time spares
 * building it and lets the route caches keyed by topic hit a string whose hash V8 already knows.
 * Publishers' client ids (origins) and id prefixes share it. 4,096 slots (at most some 0.5 MiB of
 * short strings): with 256, fifty topics and fifty publishers kept evicting each other.
 */
const TOPIC_SLOTS = 4096;
const topicBytes: (Uint8Array | null)[] = new Array(TOPIC_SLOTS).fill(null);
const topicStrings: string[] = new Array(TOPIC_SLOTS).fill("");

/**
 * Field reader over one frame, or over `[start, end)` of a larger buffer; every overrun is an
 * error, never a short read. `views`: bytes fields come back as views into `buf` instead of
 * copies, for a buffer the caller owns (a private copy of a batch: see wire.ts decodeFrames).
 */
export class In {
  #view: DataView;
  pos: number;
  end: number;
  constructor(
    readonly buf: Uint8Array,
    start = 0,
    end = buf.byteLength,
    private readonly views = false,
  ) {
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
    this.end = end;
  }
  /** Reads `[start, end)` of the same buffer from now on (the next frame of a batch). */
  frame(start: number, end: number): void {
    this.pos = start;
    this.end = end;
  }
  #need(n: number): number {
    const p = this.pos;
    if (p + n > this.end) throw new Error("cluster message truncated");
    this.pos = p + n;
    return p;
  }
  u8(): number {
    return this.buf[this.#need(1)];
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
    throw new Error("cluster message has an overlong varint");
  }
  f64(): number {
    return this.#view.getFloat64(this.#need(8));
  }
  str(): string {
    const len = this.#view.getUint16(this.#need(2));
    return this.#string(this.#need(len), len);
  }

  /** The string of the `len` bytes at `start`. */
  #string(start: number, len: number): string {
    if (len <= SHORT) {
      const b = this.buf;
      let ascii = true;
      for (let i = start; i < start + len; i++) {
        if (b[i] >= 0x80) {
          ascii = false;
          break;
        }
      }
      // One flat string: ids and topics are Map keys on the receiving node, and a string built
      // by += (a rope) is flattened again by every lookup (a fifth of its CPU in a profile).
      if (ascii) {
        return String.fromCharCode.apply(
          null,
          b.subarray(start, start + len) as unknown as number[],
        );
      }
    }
    const s = readUtf8(this.buf, start, start + len);
    // readUtf8 refuses what MQTT forbids (NUL); the wire carries whatever was encoded.
    return typeof s === "string"
      ? s
      : new TextDecoder().decode(this.buf.subarray(start, start + len));
  }
  /**
   * A string that often repeats (a topic, a publisher's client id): the string decoded last
   * time for the same bytes, if still cached.
   */
  repeated(): string {
    const p = this.pos;
    const b = this.buf;
    if (p + 2 > this.end) return this.str(); // reports the truncation
    const len = (b[p] << 8) | b[p + 1];
    const start = p + 2;
    if (len > SHORT || start + len > this.end) return this.str();
    return this.#cached(start, start + len);
  }

  /**
   * A message id. Ids made by a node are `<its prefix><counter>` (broker/messages.ts): the prefix
   * up to the last "-" repeats and comes from the cache, so only the few counter digits are new.
   * The result is a two-part string; its parts are left in `idParts` (see there).
   */
  id(): string {
    idParts.counter = -1;
    const p = this.pos;
    const b = this.buf;
    if (p + 2 > this.end) return this.str();
    const len = (b[p] << 8) | b[p + 1];
    const start = p + 2;
    const end = start + len;
    if (len > SHORT || end > this.end) return this.str();
    // The "-" before the counter: at most MAX_ID_DIGITS characters before the end.
    const stop = Math.max(start, end - MAX_ID_DIGITS - 1);
    let dash = end - 1;
    let canonical = true;
    for (; dash >= stop; dash--) {
      const c = b[dash];
      if (c === 0x2d) break;
      if (c >= 0x80) return this.str();
      if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a))) canonical = false;
    }
    if (dash < stop || b[dash] !== 0x2d) return this.str();
    const prefix = this.#cached(start, dash + 1);
    const digits = end - dash - 1;
    // Only the canonical base-36 form (digits and lower case, no leading zero) is a counter;
    // its string is then the number's (one conversion instead of a string per character).
    if (canonical && digits > 0 && !(b[dash + 1] === 0x30 && digits > 1)) {
      let n = 0;
      for (let i = dash + 1; i < end; i++) {
        const c = b[i];
        n = n * 36 + (c <= 0x39 ? c - 0x30 : c - 0x61 + 10);
      }
      this.pos = end;
      idParts.prefix = prefix;
      idParts.counter = n;
      return prefix + n.toString(36);
    }
    let tail = "";
    for (let i = dash + 1; i < end; i++) tail += String.fromCharCode(b[i]);
    this.pos = end;
    return prefix + tail;
  }

  /** The string of the MQTT string whose bytes are `[start, end)`, from the cache if known. */
  #cached(start: number, end: number): string {
    const b = this.buf;
    const len = end - start;
    let h = len;
    for (let i = start; i < end; i++) h = (Math.imul(h, 31) + b[i]) | 0;
    const slot = (h ^ (h >>> 8)) & (TOPIC_SLOTS - 1);
    const known = topicBytes[slot];
    if (known !== null && known.length === len) {
      let same = true;
      for (let i = 0; i < len; i++) {
        if (known[i] !== b[start + i]) {
          same = false;
          break;
        }
      }
      if (same) {
        this.pos = end;
        return topicStrings[slot];
      }
    }
    const s = this.#string(start, len);
    const copy = new Uint8Array(len);
    copy.set(b.subarray(start, end));
    topicBytes[slot] = copy;
    topicStrings[slot] = s;
    this.pos = end;
    return s;
  }

  bytes(): Uint8Array {
    return this.#take(this.varint());
  }
  /** Steps over `len` bytes (a nested frame the caller reads on its own). */
  skip(len: number): void {
    this.#need(len);
  }
  rest(): Uint8Array {
    return this.#take(this.end - this.pos);
  }
  /**
   * `len` bytes: a view when reading a buffer the caller owns, else a plain Uint8Array copy
   * (never a Buffer, never a view pinning Redis's reply buffer).
   */
  #take(len: number): Uint8Array {
    const start = this.#need(len);
    if (this.views) return this.buf.subarray(start, start + len);
    const b = new Uint8Array(len);
    b.set(this.buf.subarray(start, start + len));
    return b;
  }
}
