/**
 * RFC 6455 framing (section 5), server side: a streaming decoder for client frames and the
 * encoder for the broker's unmasked frames.
 *
 * Binary payloads are never collected: each piece is unmasked in place, in the chunk the
 * transport handed over (which it never touches again), and passed on as a view. MQTT over
 * WebSocket slices its byte stream arbitrarily into frames anyway, so frame boundaries carry no
 * meaning the broker needs. Only frame headers (at most 14 bytes) and control payloads (at most
 * 125 bytes) are ever copied.
 */

/** Opcodes, RFC 6455 section 5.2. */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;

/** Close codes, RFC 6455 section 7.4.1. */
export const CloseCode = {
  Normal: 1000,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  InvalidPayload: 1007,
  TooBig: 1009,
} as const;

/** What the decoder finds in the client's frames. */
export interface FrameHandler {
  /** A piece of a binary message, unmasked, as a view into the pushed chunk. */
  onBinary(piece: Uint8Array): void;
  /**
   * A text message starts (MQTT needs binary). Its payload is skipped; later frames are still
   * decoded, so the close handshake the handler starts can finish.
   */
  onText(): void;
  onPing(payload: Uint8Array): void;
  /** The client closes; `code` is undefined when its close frame had no status (1005). */
  onClose(code: number | undefined, reason: string): void;
  /** The client broke the protocol; the decoder stops. `code` is the close code to answer. */
  onError(code: number, why: string): void;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Close codes a peer may send (RFC 6455 section 7.4, IANA registry). */
function validCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

/** Header scratch shared by all decoders (push() is synchronous; see #readHeader). */
const HEAD = new Uint8Array(14);
/** The masking key of the frame being unmasked, shared likewise. */
const MASK = new Uint8Array(4);

/**
 * Decodes client-to-server frames pushed in chunks of any size. After `onError` or `onClose` it
 * ignores everything.
 */
export class FrameDecoder {
  readonly #max: number;
  readonly #h: FrameHandler;
  /**
   * A header split across chunks, kept only until it is complete: an idle connection holds no
   * buffer (two small typed arrays per connection were ~0.3 KiB of its memory).
   */
  #head: Uint8Array | null = null;
  #headLen = 0;
  /** Payload bytes of the current frame still to come; -1 while reading a header. */
  #remaining = -1;
  #opcode = 0;
  #fin = false;
  /** The current frame's masking key, one byte per field (no typed array per connection). */
  #m0 = 0;
  #m1 = 0;
  #m2 = 0;
  #m3 = 0;
  /** Payload bytes of the current frame already unmasked (the mask key's phase). */
  #done = 0;
  /** A control frame's payload, collected (at most 125 bytes). */
  #control: Uint8Array | null = null;
  /** Opcode of the fragmented message in progress, 0 if none. */
  #message = 0;
  #stopped = false;
  /** The current frame belongs to a text message: its payload is dropped. */
  #skip = false;

  /** `maxFrameSize`: the largest payload a frame may announce (else close 1009). */
  constructor(maxFrameSize: number, handler: FrameHandler) {
    this.#max = maxFrameSize;
    this.#h = handler;
  }

  /** Whether the decoder has stopped (protocol error or close frame). */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Decodes `chunk`, unmasking binary payload in place. */
  push(chunk: Uint8Array): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len && !this.#stopped) {
      if (this.#remaining < 0) {
        pos = this.#readHeader(chunk, pos);
        continue;
      }
      const n = Math.min(this.#remaining, len - pos);
      const piece = chunk.subarray(pos, pos + n);
      pos += n;
      this.#unmask(piece);
      this.#remaining -= n;
      if (this.#control) {
        this.#control.set(piece, this.#control.length - this.#remaining - n);
      } else if (n > 0 && !this.#skip) {
        this.#h.onBinary(piece);
      }
      if (this.#remaining === 0) this.#frameDone();
    }
  }

  #unmask(piece: Uint8Array): void {
    const m = MASK;
    m[0] = this.#m0;
    m[1] = this.#m1;
    m[2] = this.#m2;
    m[3] = this.#m3;
    let phase = this.#done & 3;
    for (let i = 0; i < piece.length; i++) {
      piece[i] ^= m[phase];
      phase = (phase + 1) & 3;
    }
    this.#done += piece.length;
  }

  /** Reads header bytes from `chunk` at `pos`; returns the new position. */
  #readHeader(chunk: Uint8Array, pos: number): number {
    // Byte by byte into a small buffer: headers are at most 14 bytes. The shared scratch is
    // used unless a header was split across chunks, which then gets its own copy until done.
    const head = this.#head ?? HEAD;
    while (pos < chunk.length) {
      head[this.#headLen++] = chunk[pos++];
      if (this.#headLen >= 2 && this.#headLen === headerLength(head)) {
        this.#headLen = 0;
        this.#head = null;
        this.#startFrame(head);
        return pos;
      }
    }
    if (head === HEAD) this.#head = HEAD.slice();
    return pos;
  }

  #startFrame(head: Uint8Array): void {
    const b0 = head[0];
    const b1 = head[1];
    this.#fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    // Section 5.2: RSV bits must be 0 unless an extension says otherwise; none is negotiated.
    if ((b0 & 0x70) !== 0) return this.#fail(CloseCode.ProtocolError, "reserved bits set");
    // Section 5.1: a server must close on an unmasked client frame.
    if ((b1 & 0x80) === 0) return this.#fail(CloseCode.ProtocolError, "unmasked client frame");
    let length = b1 & 0x7f;
    let at = 2;
    if (length === 126) {
      length = (head[2] << 8) | head[3];
      at = 4;
      // Section 5.2: "the minimal number of bytes MUST be used to encode the length".
      if (length < 126) return this.#fail(CloseCode.ProtocolError, "non-minimal length");
    } else if (length === 127) {
      // The most significant bit must be 0; above 2^53 a double loses precision, far beyond
      // any limit anyway.
      const high = (head[2] << 24 | head[3] << 16 | head[4] << 8 | head[5]) >>> 0;
      const low = (head[6] << 24 | head[7] << 16 | head[8] << 8 | head[9]) >>> 0;
      if (high & 0x80000000) return this.#fail(CloseCode.ProtocolError, "length MSB set");
      length = high * 2 ** 32 + low;
      at = 10;
      if (length < 65536) return this.#fail(CloseCode.ProtocolError, "non-minimal length");
    }
    this.#m0 = head[at];
    this.#m1 = head[at + 1];
    this.#m2 = head[at + 2];
    this.#m3 = head[at + 3];
    this.#skip = false;
    this.#done = 0;
    this.#opcode = opcode;
    if (opcode >= 0x8) {
      // Section 5.5: control frames are never fragmented and carry at most 125 bytes.
      if (opcode > Opcode.Pong) return this.#fail(CloseCode.ProtocolError, `opcode ${opcode}`);
      if (!this.#fin) return this.#fail(CloseCode.ProtocolError, "fragmented control frame");
      if (length > 125) return this.#fail(CloseCode.ProtocolError, "control frame too long");
      this.#control = new Uint8Array(length);
    } else {
      this.#control = null;
      if (opcode === Opcode.Continuation) {
        // Section 5.4: a continuation belongs to a message in progress.
        if (this.#message === 0) return this.#fail(CloseCode.ProtocolError, "stray continuation");
      } else if (opcode === Opcode.Text || opcode === Opcode.Binary) {
        // Section 5.4: fragments of one message are not interleaved with another message.
        if (this.#message !== 0) {
          return this.#fail(CloseCode.ProtocolError, "new message inside a fragmented one");
        }
        this.#message = opcode;
        if (opcode === Opcode.Text) this.#h.onText();
      } else {
        return this.#fail(CloseCode.ProtocolError, `opcode ${opcode}`);
      }
      this.#skip = this.#message === Opcode.Text;
      // Checked before any payload is read: the limit never depends on what was buffered.
      if (length > this.#max) {
        return this.#fail(CloseCode.TooBig, `frame of ${length} bytes exceeds ${this.#max}`);
      }
    }
    this.#remaining = length;
    if (length === 0) this.#frameDone();
  }

  #frameDone(): void {
    this.#remaining = -1;
    const opcode = this.#opcode;
    if (opcode < 0x8) {
      if (this.#fin) this.#message = 0;
      return;
    }
    const payload = this.#control!;
    this.#control = null;
    if (opcode === Opcode.Ping) this.#h.onPing(payload);
    else if (opcode === Opcode.Close) this.#closeFrame(payload);
    // A pong needs no answer (section 5.5.3: unsolicited pongs are allowed).
  }

  /** Section 5.5.1: an optional 2-byte status code, then an optional UTF-8 reason. */
  #closeFrame(payload: Uint8Array): void {
    if (payload.length === 0) {
      this.#stopped = true;
      this.#h.onClose(undefined, "");
      return;
    }
    if (payload.length === 1) return this.#fail(CloseCode.ProtocolError, "1-byte close payload");
    const code = (payload[0] << 8) | payload[1];
    if (!validCloseCode(code)) return this.#fail(CloseCode.ProtocolError, `close code ${code}`);
    let reason: string;
    try {
      reason = utf8.decode(payload.subarray(2));
    } catch {
      return this.#fail(CloseCode.InvalidPayload, "close reason is not UTF-8");
    }
    this.#stopped = true;
    this.#h.onClose(code, reason);
  }

  #fail(code: number, why: string): void {
    this.#stopped = true;
    this.#h.onError(code, why);
  }
}

/** Length of the header that starts with the two bytes in `head`. */
function headerLength(head: Uint8Array): number {
  const len7 = head[1] & 0x7f;
  const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
  return 2 + ext + ((head[1] & 0x80) !== 0 ? 4 : 0);
}

/** The header of an unmasked, final server frame (section 5.2). */
export function frameHeader(opcode: number, length: number): Uint8Array {
  if (length < 126) return new Uint8Array([0x80 | opcode, length]);
  if (length < 65536) return new Uint8Array([0x80 | opcode, 126, length >> 8, length & 0xff]);
  const h = new Uint8Array(10);
  h[0] = 0x80 | opcode;
  h[1] = 127;
  new DataView(h.buffer).setBigUint64(2, BigInt(length));
  return h;
}

/** A whole unmasked, final server frame in one buffer. */
export function encodeFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const head = frameHeader(opcode, payload.length);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

/** A close frame's payload: the status code, then the reason (section 5.5.1). */
export function closePayload(code: number | undefined, reason = ""): Uint8Array {
  if (code === undefined) return new Uint8Array(0);
  const text = new TextEncoder().encode(reason).subarray(0, 123);
  const out = new Uint8Array(2 + text.length);
  out[0] = code >> 8;
  out[1] = code & 0xff;
  out.set(text, 2);
  return out;
}
