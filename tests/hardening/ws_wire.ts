/**
 * Just enough of RFC 6455 to play a hostile client: masked (or deliberately unmasked) frames
 * with any announced length, the upgrade request with any key or version, and a parser for
 * what the server answers (an HTTP head, then unmasked frames).
 */

/** Options for a client frame; the defaults make a valid final, masked frame. */
export interface FrameOptions {
  fin?: boolean;
  /** RFC 6455 requires masking from clients; false sends it bare. */
  masked?: boolean;
  mask?: Uint8Array;
  /** The length announced in the header when it must differ from the payload's. */
  announce?: number;
}

/** A client frame: header, mask key and masked payload. */
export function clientFrame(opcode: number, payload: Uint8Array, o: FrameOptions = {}): Uint8Array {
  const masked = o.masked ?? true;
  const len = o.announce ?? payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = 2 + ext + (masked ? 4 : 0);
  const out = new Uint8Array(head + payload.length);
  out[0] = ((o.fin ?? true) ? 0x80 : 0) | opcode;
  out[1] = (masked ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  const dv = new DataView(out.buffer);
  if (ext === 2) dv.setUint16(2, len);
  if (ext === 8) dv.setBigUint64(2, BigInt(len));
  const mask = o.mask ?? Uint8Array.of(0x37, 0xfa, 0x21, 0x3d);
  if (masked) out.set(mask, 2 + ext);
  for (let i = 0; i < payload.length; i++) {
    out[head + i] = masked ? payload[i] ^ mask[i & 3] : payload[i];
  }
  return out;
}

/** An upgrade request; `headers` overrides or adds header fields. */
export function upgradeRequest(path: string, headers: Record<string, string> = {}): Uint8Array {
  const all: Record<string, string> = {
    host: "localhost",
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    "sec-websocket-version": "13",
    "sec-websocket-protocol": "mqtt",
    ...headers,
  };
  const text = `GET ${path} HTTP/1.1\r\n` +
    Object.entries(all).map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n";
  return new TextEncoder().encode(text);
}

/** A server frame as parsed. */
export interface ServerFrame {
  fin: boolean;
  opcode: number;
  masked: boolean;
  payload: Uint8Array;
}

/**
 * Parses a server's answer on a WebSocket connection as it arrives: the HTTP status line and
 * head, then frames. Anything that is not a well-formed server frame sets `malformed`.
 */
export class ServerStream {
  /** The HTTP status, once the head has arrived. */
  status: number | undefined;
  head = "";
  readonly frames: ServerFrame[] = [];
  /** Why the answer is not well-formed, if it is not. */
  malformed: string | undefined;
  #buf = new Uint8Array(0);
  #headDone = false;

  /** The status code of the first close frame, undefined if none (or none with a code). */
  get closeCode(): number | undefined {
    const f = this.frames.find((f) => f.opcode === 0x8);
    return f && f.payload.length >= 2 ? (f.payload[0] << 8) | f.payload[1] : undefined;
  }

  /** Whether a close frame arrived. */
  get closed(): boolean {
    return this.frames.some((f) => f.opcode === 0x8);
  }

  /** The binary payloads so far, joined: the MQTT bytes the server sent. */
  binary(): Uint8Array {
    const parts = this.frames.filter((f) => f.opcode === 0x2 || f.opcode === 0x0);
    const out = new Uint8Array(parts.reduce((n, f) => n + f.payload.length, 0));
    let at = 0;
    for (const f of parts) {
      out.set(f.payload, at);
      at += f.payload.length;
    }
    return out;
  }

  /** Bytes received and not yet parsed (a partial frame or head). */
  get pending(): number {
    return this.#buf.length;
  }

  push(chunk: Uint8Array): void {
    const next = new Uint8Array(this.#buf.length + chunk.length);
    next.set(this.#buf);
    next.set(chunk, this.#buf.length);
    this.#buf = next;
    if (!this.#headDone) {
      const text = new TextDecoder("latin1").decode(this.#buf);
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return;
      this.head = text.slice(0, end);
      const m = this.head.match(/^HTTP\/1\.1 (\d{3}) /);
      if (!m) this.malformed = `bad status line: ${JSON.stringify(this.head.slice(0, 60))}`;
      this.status = m ? Number(m[1]) : 0;
      this.#headDone = true;
      this.#buf = this.#buf.slice(end + 4);
      if (this.status !== 101) {
        // A refusal has a body (its reason); it is not frames.
        this.#buf = new Uint8Array(0);
        return;
      }
    }
    if (this.status !== 101) return;
    this.#frames();
  }

  #frames(): void {
    const b = this.#buf;
    let at = 0;
    while (b.length - at >= 2) {
      const fin = (b[at] & 0x80) !== 0;
      const rsv = b[at] & 0x70;
      const opcode = b[at] & 0x0f;
      const masked = (b[at + 1] & 0x80) !== 0;
      let len = b[at + 1] & 0x7f;
      let h = 2;
      if (len === 126) {
        if (b.length - at < 4) break;
        len = (b[at + 2] << 8) | b[at + 3];
        h = 4;
      } else if (len === 127) {
        if (b.length - at < 10) break;
        len = Number(new DataView(b.buffer, b.byteOffset + at + 2, 8).getBigUint64(0));
        h = 10;
      }
      if (b.length - at < h + len) break;
      if (masked || rsv !== 0 || ![0, 1, 2, 8, 9, 10].includes(opcode)) {
        this.malformed ??= `bad server frame header ${b[at].toString(16)} ${
          b[at + 1].toString(16)
        }`;
      }
      this.frames.push({ fin, opcode, masked, payload: b.slice(at + h, at + h + len) });
      at += h + len;
    }
    this.#buf = b.slice(at);
  }
}
