/**
 * Incremental MQTT decoder: bytes in, packets out, whatever the chunking.
 *
 * A resumable state machine (fixed header byte → remaining length → body). Bodies that lie
 * wholly inside one chunk are parsed in place, so PUBLISH payloads and binary properties are
 * views into the caller's chunk; only a body split across chunks is assembled, once, into a
 * buffer of exactly its size. Input chunks are never written to.
 */
import type { Packet, ProtocolVersion } from "./packets.ts";
import { ProtocolError } from "./errors.ts";
import { ReasonCode } from "./reason_codes.ts";
import { BodyReader } from "./reader.ts";
import { checkFixedHeader, parsePacket } from "./parse.ts";

export interface DecoderOptions {
  /** Largest whole packet accepted, fixed header included. */
  maxPacketSize?: number;
  protocolVersion?: ProtocolVersion;
}

/** 1 header byte + 4 length bytes + the largest remaining length (268435455). */
export const MAX_PACKET_SIZE = 268_435_460;

const HEADER = 0;
const LENGTH = 1;
const BODY = 2;

const EMPTY = new Uint8Array(0);
/** Shared by every decoder: parsing is synchronous and the reader is released after each body. */
const READER = new BodyReader();

export class Decoder {
  /**
   * Level whose rules apply to the next packets. Decoding a CONNECT of level 3, 4 or 5 switches
   * it to that level; a CONNECT of any other level is still handed out (its `protocolVersion`
   * then holds that level, outside the ProtocolVersion type) so the broker can refuse it with
   * CONNACK 0x01 / 0x84, and the decoder keeps its level.
   */
  protocolVersion: ProtocolVersion;
  maxPacketSize: number;

  #state = HEADER;
  #header = 0;
  #length = 0;
  #lengthBytes = 0;
  #multiplier = 1;
  #body: Uint8Array = EMPTY;
  #filled = 0;
  #failure: unknown = undefined;
  #failed = false;

  constructor(opts: DecoderOptions = {}) {
    this.maxPacketSize = opts.maxPacketSize ?? MAX_PACKET_SIZE;
    this.protocolVersion = opts.protocolVersion ?? 4;
  }

  /**
   * True between packets (no part of one buffered) and not failed: the decoder holds nothing a
   * connection would lose if it used another decoder for its next chunk.
   */
  get idle(): boolean {
    return this.#state === HEADER && !this.#failed;
  }

  /**
   * Feeds bytes; calls onPacket (with `self` as `this`) synchronously, in order, for each
   * complete packet. Throws
   * ProtocolError on malformed input. After any throw (including one from onPacket, which
   * leaves the rest of the chunk unread) the decoder is unusable and rethrows that error.
   */
  push<T>(chunk: Uint8Array, onPacket: (this: T, p: Packet) => void, self?: T): void {
    if (this.#failed) throw this.#failure;
    try {
      this.#consume(chunk, onPacket as (this: unknown, p: Packet) => void, self);
    } catch (e) {
      this.#failed = true;
      this.#failure = e;
      this.#body = EMPTY;
      READER.release();
      throw e;
    }
  }

  #consume(chunk: Uint8Array, onPacket: (this: unknown, p: Packet) => void, self: unknown): void {
    const len = chunk.length;
    let pos = 0;
    while (pos < len) {
      if (this.#state === HEADER) {
        const header = chunk[pos++];
        checkFixedHeader(header, this.protocolVersion);
        this.#header = header;
        this.#length = 0;
        this.#lengthBytes = 0;
        this.#multiplier = 1;
        this.#state = LENGTH;
      } else if (this.#state === LENGTH) {
        const b = chunk[pos++];
        this.#length += (b & 0x7f) * this.#multiplier;
        this.#multiplier *= 128;
        this.#lengthBytes++;
        if ((b & 0x80) !== 0) {
          if (this.#lengthBytes === 4) {
            const v5 = this.protocolVersion === 5;
            throw new ProtocolError(
              "remaining length longer than 4 bytes",
              v5 ? "MQTT-1.5.5-1" : "2.2.3",
              ReasonCode.MalformedPacket,
            );
          }
          continue;
        }
        const length = this.#length;
        const total = 1 + this.#lengthBytes + length;
        // Checked before any body byte is buffered, so a huge announcement costs nothing.
        if (total > this.maxPacketSize) {
          throw new ProtocolError(
            `packet of ${total} bytes exceeds the maximum packet size ${this.maxPacketSize}`,
            this.protocolVersion === 5 ? "3.2.2.3.6" : "2.2.3",
            ReasonCode.PacketTooLarge,
          );
        }
        if (len - pos >= length) {
          this.#state = HEADER;
          const start = pos;
          pos += length;
          onPacket.call(self, this.#parse(chunk, start, pos));
        } else {
          const body = new Uint8Array(length);
          body.set(pos === 0 ? chunk : chunk.subarray(pos));
          this.#body = body;
          this.#filled = len - pos;
          pos = len;
          this.#state = BODY;
        }
      } else {
        const need = this.#length - this.#filled;
        const avail = len - pos;
        if (avail < need) {
          this.#body.set(pos === 0 ? chunk : chunk.subarray(pos), this.#filled);
          this.#filled += avail;
          return;
        }
        const body = this.#body;
        body.set(pos === 0 && need === len ? chunk : chunk.subarray(pos, pos + need), this.#filled);
        pos += need;
        this.#body = EMPTY;
        this.#state = HEADER;
        onPacket.call(self, this.#parse(body, 0, body.length));
      }
    }
  }

  #parse(buf: Uint8Array, start: number, end: number): Packet {
    const r = READER;
    r.reset(buf, start, end, this.protocolVersion === 5);
    const packet = parsePacket(r, this.#header, this.protocolVersion);
    r.release();
    if (packet.type === "connect") {
      const level = packet.protocolVersion;
      if (level === 3 || level === 4 || level === 5) this.protocolVersion = level;
    }
    return packet;
  }
}
