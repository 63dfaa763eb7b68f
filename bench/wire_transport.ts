/**
 * The load generator's byte path to a broker over each transport production uses: plain TCP,
 * TLS (Deno.connectTls), MQTT over WebSocket (RFC 6455, subprotocol "mqtt") and over secure
 * WebSocket. The WebSocket client is ours and minimal: one upgrade request, every write one
 * binary frame (masked with a zero key, which RFC 6455 allows and which makes masking free for
 * the generator on every broker alike), server frames unwrapped as they are read.
 */

/** The transports a scenario can run over. */
export type Transport = "tcp" | "tls" | "ws" | "wss" | "mtls";

/** What BenchConn needs of a connection: read into a buffer, write all, close. */
export interface Wire {
  /** Bytes read into `buf`, or null at the end of the stream. */
  read(buf: Uint8Array): Promise<number | null>;
  /** Writes all of `data`. */
  write(data: Uint8Array): Promise<void>;
  close(): void;
}

/** Where the brokers' listeners are and what the generator trusts for TLS. */
export interface Endpoint {
  hostname: string;
  port: number;
  transport: Transport;
  /** PEM CA for tls/wss/mtls. */
  ca?: string;
  /** mtls: the client certificate and key (PEM). */
  cert?: string;
  key?: string;
  /** WebSocket path (default /mqtt). */
  path?: string;
}

class StreamWire implements Wire {
  constructor(private readonly conn: Deno.Conn) {}
  read(buf: Uint8Array): Promise<number | null> {
    return this.conn.read(buf);
  }
  async write(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) off += await this.conn.write(data.subarray(off));
  }
  close(): void {
    try {
      this.conn.close();
    } catch { /* closed */ }
  }
}

/** Opens a connection over `e.transport` (for ws/wss: upgraded, ready for MQTT bytes). */
export async function openWire(e: Endpoint): Promise<Wire> {
  const tls = e.transport === "tls" || e.transport === "wss" || e.transport === "mtls";
  let conn: Deno.Conn;
  if (tls) {
    conn = await Deno.connectTls({
      hostname: e.hostname,
      port: e.port,
      caCerts: e.ca ? [e.ca] : undefined,
      ...(e.cert && e.key ? { cert: e.cert, key: e.key } : {}),
    });
    await (conn as Deno.TlsConn).handshake();
  } else {
    const tcp = await Deno.connect({ hostname: e.hostname, port: e.port });
    tcp.setNoDelay(true);
    conn = tcp;
  }
  const raw = new StreamWire(conn);
  if (e.transport !== "ws" && e.transport !== "wss") return raw;
  try {
    return await upgrade(raw, e);
  } catch (err) {
    raw.close();
    throw err;
  }
}

const te = new TextEncoder();

async function upgrade(raw: StreamWire, e: Endpoint): Promise<Wire> {
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  await raw.write(te.encode(
    `GET ${e.path ?? "/mqtt"} HTTP/1.1\r\nHost: ${e.hostname}:${e.port}\r\n` +
      `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
      `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n`,
  ));
  // Read the response head; whatever follows it is the first frame bytes.
  let head = new Uint8Array(0);
  const buf = new Uint8Array(4096);
  while (true) {
    const n = await raw.read(buf);
    if (n === null) throw new Error("connection closed during the WebSocket upgrade");
    const next = new Uint8Array(head.length + n);
    next.set(head);
    next.set(buf.subarray(0, n), head.length);
    head = next;
    const end = indexOfCrlfCrlf(head);
    if (end < 0) {
      if (head.length > 16384) throw new Error("WebSocket upgrade response too long");
      continue;
    }
    const text = new TextDecoder().decode(head.subarray(0, end));
    if (!/^HTTP\/1\.1 101/.test(text)) {
      throw new Error(`WebSocket upgrade refused: ${text.split("\r\n")[0]}`);
    }
    return new WsWire(raw, head.subarray(end + 4));
  }
}

function indexOfCrlfCrlf(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

/** MQTT bytes inside WebSocket binary frames. */
class WsWire implements Wire {
  /** Bytes read but not yet unframed (a header split over reads). */
  private carry: Uint8Array;
  /** Payload bytes of the current frame still to come. */
  private remaining = 0;
  private readonly inBuf = new Uint8Array(128 * 1024);
  private opcode = 0;

  constructor(private readonly raw: StreamWire, first: Uint8Array) {
    this.carry = first.slice();
  }

  /** Unframes what was read into `out`; returns payload bytes copied (0: need more input). */
  private unframe(src: Uint8Array, out: Uint8Array): { n: number; rest: Uint8Array } {
    let o = 0;
    let i = 0;
    while (i < src.length && o < out.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, src.length - i, out.length - o);
        if (this.opcode === 2 || this.opcode === 0) out.set(src.subarray(i, i + take), o);
        else throw new Error(`unexpected WebSocket opcode ${this.opcode}`);
        o += take;
        i += take;
        this.remaining -= take;
        continue;
      }
      // A frame header: needs 2, 4 or 10 bytes (server frames are not masked).
      if (src.length - i < 2) break;
      const b0 = src[i];
      const b1 = src[i + 1];
      let len = b1 & 0x7f;
      let h = 2;
      if (len === 126) {
        if (src.length - i < 4) break;
        len = (src[i + 2] << 8) | src[i + 3];
        h = 4;
      } else if (len === 127) {
        if (src.length - i < 10) break;
        len = Number(new DataView(src.buffer, src.byteOffset + i + 2, 8).getBigUint64(0));
        h = 10;
      }
      const op = b0 & 0x0f;
      if (op === 8) throw new Error("WebSocket closed by the broker");
      if (op !== 0) this.opcode = op;
      if (op === 9 || op === 10) {
        // ping/pong: skip the payload (the brokers send none to an active client)
        if (src.length - i < h + len) break;
        i += h + len;
        continue;
      }
      i += h;
      this.remaining = len;
    }
    return { n: o, rest: src.subarray(i) };
  }

  async read(out: Uint8Array): Promise<number | null> {
    while (true) {
      if (this.carry.length > 0) {
        const { n, rest } = this.unframe(this.carry, out);
        this.carry = rest.length > 0 ? rest.slice() : new Uint8Array(0);
        if (n > 0) return n;
      }
      const got = await this.raw.read(this.inBuf);
      if (got === null) return null;
      let src = this.inBuf.subarray(0, got);
      if (this.carry.length > 0) {
        const joined = new Uint8Array(this.carry.length + got);
        joined.set(this.carry);
        joined.set(src, this.carry.length);
        src = joined;
        this.carry = new Uint8Array(0);
      }
      const { n, rest } = this.unframe(src, out);
      if (rest.length > 0) this.carry = rest.slice();
      if (n > 0) return n;
    }
  }

  write(data: Uint8Array): Promise<void> {
    const len = data.length;
    const h = len < 126 ? 2 : len < 65536 ? 4 : 10;
    const frame = new Uint8Array(h + 4 + len);
    frame[0] = 0x82;
    if (h === 2) frame[1] = 0x80 | len;
    else if (h === 4) {
      frame[1] = 0x80 | 126;
      frame[2] = len >> 8;
      frame[3] = len & 255;
    } else {
      frame[1] = 0x80 | 127;
      new DataView(frame.buffer).setBigUint64(2, BigInt(len));
    }
    // Mask key 0 (frame[h..h+3] stay 0): the payload goes as it is.
    frame.set(data, h + 4);
    return this.raw.write(frame);
  }

  close(): void {
    this.raw.close();
  }
}
