/**
 * Bounds-checked reads over one packet body. Every overrun becomes a ProtocolError, which is
 * what keeps the decoder from ever throwing RangeError/TypeError on hostile input.
 */
import { ProtocolError } from "./errors.ts";
import { ReasonCode } from "./reason_codes.ts";
import { readUtf8, UTF8_NUL } from "./utf8.ts";

const EMPTY = new Uint8Array(0);

export class BodyReader {
  buf: Uint8Array = EMPTY;
  pos = 0;
  end = 0;
  /** Whether 5.0 rules and statement ids apply (the decoder's level, or a CONNECT's own). */
  v5 = false;
  /** Where the last utf8() string's bytes start, for callers that scan them (topic names). */
  lastStart = 0;

  reset(buf: Uint8Array, start: number, end: number, v5: boolean): void {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    this.v5 = v5;
  }

  /** Drops the reference so a finished packet's buffer is not pinned by the decoder. */
  release(): void {
    this.buf = EMPTY;
  }

  /** Statement id picker: 3.1.1 numbering for levels 3/4, 5.0 numbering for level 5. */
  id(v311: string, v5: string): string {
    return this.v5 ? v5 : v311;
  }

  malformed(message: string, v311: string, v5: string = v311): never {
    throw new ProtocolError(message, this.v5 ? v5 : v311, ReasonCode.MalformedPacket);
  }

  protocolError(message: string, v311: string, v5: string = v311): never {
    throw new ProtocolError(message, this.v5 ? v5 : v311, ReasonCode.ProtocolError);
  }

  truncated(): never {
    return this.malformed("remaining length too short for the packet's fields", "2.2.3", "2.1.4");
  }

  /** Rejects bytes left over where the packet type defines nothing more. */
  expectEnd(packet: string): void {
    if (this.pos !== this.end) {
      this.malformed(
        `${packet} has ${this.end - this.pos} unexpected trailing bytes`,
        "2.2.3",
        "2.1.4",
      );
    }
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  u8(): number {
    if (this.pos >= this.end) this.truncated();
    return this.buf[this.pos++];
  }

  u16(): number {
    const p = this.pos;
    if (p + 2 > this.end) this.truncated();
    this.pos = p + 2;
    return (this.buf[p] << 8) | this.buf[p + 1];
  }

  u32(): number {
    const p = this.pos;
    if (p + 4 > this.end) this.truncated();
    this.pos = p + 4;
    const b = this.buf;
    return b[p] * 0x1000000 + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]);
  }

  /** Variable Byte Integer (5.0 section 1.5.5): at most 4 bytes. */
  vbi(): number {
    let value = 0;
    let multiplier = 1;
    for (let i = 0; i < 4; i++) {
      const b = this.u8();
      value += (b & 0x7f) * multiplier;
      if ((b & 0x80) === 0) return value;
      multiplier *= 128;
    }
    return this.malformed("variable byte integer longer than 4 bytes", "2.2.3", "MQTT-1.5.5-1");
  }

  /** Packet Identifier where the spec requires one, so never 0. */
  packetId(packet: string): number {
    const id = this.u16();
    if (id === 0) {
      this.protocolError(`${packet} with packet identifier 0`, "MQTT-2.3.1-1", "MQTT-2.2.1-3");
    }
    return id;
  }

  utf8(): string {
    const n = this.u16();
    const start = this.pos;
    const stop = start + n;
    if (stop > this.end) this.truncated();
    this.pos = stop;
    this.lastStart = start;
    const s = readUtf8(this.buf, start, stop);
    if (typeof s === "string") return s;
    if (s === UTF8_NUL) {
      return this.malformed("UTF-8 string contains U+0000", "MQTT-1.5.3-2", "MQTT-1.5.4-2");
    }
    return this.malformed("ill-formed UTF-8 string", "MQTT-1.5.3-1", "MQTT-1.5.4-1");
  }

  /** Binary Data as a view into the packet's buffer: no copy. */
  binary(): Uint8Array {
    const n = this.u16();
    const start = this.pos;
    const stop = start + n;
    if (stop > this.end) this.truncated();
    this.pos = stop;
    return this.buf.subarray(start, stop);
  }

  /** The rest of the packet, as a view. */
  rest(): Uint8Array {
    const start = this.pos;
    this.pos = this.end;
    return this.buf.subarray(start, this.end);
  }
}
