/**
 * A raw TCP MQTT 3.1/3.1.1 client for byte-exact and malformed input in end-to-end tests.
 * Self-contained on purpose: it does not use src/codec, so codec bugs cannot hide in both sides.
 */

export const PacketType = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
} as const;

const NAMES = [
  "RESERVED0",
  "CONNECT",
  "CONNACK",
  "PUBLISH",
  "PUBACK",
  "PUBREC",
  "PUBREL",
  "PUBCOMP",
  "SUBSCRIBE",
  "SUBACK",
  "UNSUBSCRIBE",
  "UNSUBACK",
  "PINGREQ",
  "PINGRESP",
  "DISCONNECT",
  "RESERVED15",
];

/** A packet received from the broker, with the fields of the common types decoded. */
export interface Packet {
  type: number;
  name: string;
  /** Low nibble of the first byte. */
  flags: number;
  /** The whole packet as received, fixed header included. */
  bytes: Uint8Array;
  /** Variable header + payload. */
  body: Uint8Array;
  // CONNACK
  sessionPresent?: boolean;
  returnCode?: number;
  // PUBLISH
  topic?: string;
  qos?: number;
  dup?: boolean;
  retain?: boolean;
  payload?: Uint8Array;
  // PUBLISH (QoS > 0), PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK
  packetId?: number;
  // SUBACK
  granted?: number[];
}

export function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

export function describe(p: Packet): string {
  let s = `${p.name}[${hex(p.bytes.subarray(0, 24))}${p.bytes.length > 24 ? " …" : ""}]`;
  if (p.type === PacketType.PUBLISH) {
    s += ` topic=${p.topic} qos=${p.qos} dup=${p.dup} retain=${p.retain} id=${p.packetId}`;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Encoding helpers (by hand, byte by byte)

const te = new TextEncoder();

export function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const arrays = parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p)));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

export function remainingLength(n: number): Uint8Array {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Uint8Array.from(out);
}

export function u16(n: number): Uint8Array {
  return Uint8Array.from([(n >> 8) & 0xff, n & 0xff]);
}

/** Length-prefixed string: a JS string (UTF-8 encoded) or raw bytes (for invalid UTF-8). */
export function str(s: string | Uint8Array): Uint8Array {
  const b = typeof s === "string" ? te.encode(s) : s;
  return concat(u16(b.length), b);
}

export function bytesOf(p: string | Uint8Array): Uint8Array {
  return typeof p === "string" ? te.encode(p) : p;
}

/** A packet from its first byte (type << 4 | flags) and body, with a correct remaining length. */
export function packet(firstByte: number, body: Uint8Array | number[] = []): Uint8Array {
  const b = body instanceof Uint8Array ? body : Uint8Array.from(body);
  return concat([firstByte], remainingLength(b.length), b);
}

export interface ConnectOptions {
  clientId?: string;
  cleanSession?: boolean;
  keepAlive?: number;
  /** Default "MQTT" (3.1.1); use "MQIsdp" with protocolLevel 3 for MQTT 3.1. */
  protocolName?: string;
  /** Default 4. */
  protocolLevel?: number;
  username?: string;
  password?: string;
  will?: { topic: string; payload: string | Uint8Array; qos?: number; retain?: boolean };
}

export function connect(o: ConnectOptions = {}): Uint8Array {
  let flags = 0;
  if (o.cleanSession ?? true) flags |= 0x02;
  if (o.will) {
    flags |= 0x04 | ((o.will.qos ?? 0) << 3);
    if (o.will.retain) flags |= 0x20;
  }
  if (o.password !== undefined) flags |= 0x40;
  if (o.username !== undefined) flags |= 0x80;
  const parts: Uint8Array[] = [
    str(o.protocolName ?? "MQTT"),
    Uint8Array.from([o.protocolLevel ?? 4, flags]),
    u16(o.keepAlive ?? 60),
    str(o.clientId ?? ""),
  ];
  if (o.will) parts.push(str(o.will.topic), str(bytesOf(o.will.payload)));
  if (o.username !== undefined) parts.push(str(o.username));
  if (o.password !== undefined) parts.push(str(o.password));
  return packet(0x10, concat(...parts));
}

export interface PublishOptions {
  topic: string | Uint8Array;
  payload?: string | Uint8Array;
  qos?: number;
  retain?: boolean;
  dup?: boolean;
  packetId?: number;
}

export function publish(o: PublishOptions): Uint8Array {
  const qos = o.qos ?? 0;
  const first = 0x30 | (o.dup ? 0x08 : 0) | (qos << 1) | (o.retain ? 0x01 : 0);
  const parts = [str(o.topic)];
  if (qos > 0) parts.push(u16(o.packetId ?? 1));
  parts.push(bytesOf(o.payload ?? ""));
  return packet(first, concat(...parts));
}

export function subscribe(packetId: number, subs: [string | Uint8Array, number][]): Uint8Array {
  return packet(
    0x82,
    concat(u16(packetId), ...subs.map(([f, q]) => concat(str(f), [q]))),
  );
}

export function unsubscribe(packetId: number, filters: string[]): Uint8Array {
  return packet(0xa2, concat(u16(packetId), ...filters.map((f) => str(f))));
}

export const puback = (id: number) => packet(0x40, u16(id));
export const pubrec = (id: number) => packet(0x50, u16(id));
/** PUBREL; the correct first byte is 0x62 (flags 0010). */
export const pubrel = (id: number, firstByte = 0x62) => packet(firstByte, u16(id));
export const pubcomp = (id: number) => packet(0x70, u16(id));
export const pingreq = () => Uint8Array.from([0xc0, 0x00]);
export const disconnect = () => Uint8Array.from([0xe0, 0x00]);

// ---------------------------------------------------------------------------------------------
// Decoding

const td = new TextDecoder();

/** Parses one packet from the start of `buf`; undefined if incomplete. */
export function parsePacket(buf: Uint8Array): { packet: Packet; size: number } | undefined {
  if (buf.length < 2) return undefined;
  let len = 0;
  let mult = 1;
  let i = 1;
  for (;;) {
    if (i >= buf.length) return undefined;
    const b = buf[i++];
    len += (b & 0x7f) * mult;
    if ((b & 0x80) === 0) break;
    mult *= 128;
    if (i > 4) {
      throw new Error(`malformed remaining length from broker: ${hex(buf.subarray(0, 6))}`);
    }
  }
  if (buf.length < i + len) return undefined;
  const bytes = buf.slice(0, i + len);
  const body = bytes.subarray(i);
  const type = bytes[0] >> 4;
  const flags = bytes[0] & 0x0f;
  const p: Packet = { type, name: NAMES[type], flags, bytes, body };
  const id = (o: number) => (body[o] << 8) | body[o + 1];
  switch (type) {
    case PacketType.CONNACK:
      p.sessionPresent = (body[0] & 1) === 1;
      p.returnCode = body[1];
      break;
    case PacketType.PUBLISH: {
      p.qos = (flags >> 1) & 3;
      p.dup = (flags & 8) !== 0;
      p.retain = (flags & 1) !== 0;
      const tl = id(0);
      p.topic = td.decode(body.subarray(2, 2 + tl));
      let o = 2 + tl;
      if (p.qos > 0) {
        p.packetId = id(o);
        o += 2;
      }
      p.payload = body.subarray(o);
      break;
    }
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP:
    case PacketType.UNSUBACK:
      p.packetId = id(0);
      break;
    case PacketType.SUBACK:
      p.packetId = id(0);
      p.granted = [...body.subarray(2)];
      break;
  }
  return { packet: p, size: i + len };
}

// ---------------------------------------------------------------------------------------------
// The client

export class RawClient {
  readonly conn: Deno.TcpConn;
  #buf: Uint8Array = new Uint8Array(0);
  #queue: Packet[] = [];
  #waiters = new Set<() => void>();
  #eof = false;
  #error: unknown;
  #paused = false;
  #resume: (() => void) | undefined;
  #closing = false;
  #loop: Promise<void>;
  /** Every packet received so far, in order. */
  readonly received: Packet[] = [];

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    this.#loop = this.#readLoop();
  }

  static async open(host: string, port: number): Promise<RawClient> {
    const conn = await Deno.connect({ hostname: host, port });
    conn.setNoDelay(true);
    return new RawClient(conn);
  }

  /** True once the broker closed the connection (EOF or reset). */
  get closed(): boolean {
    return this.#eof;
  }

  async #readLoop(): Promise<void> {
    const chunk = new Uint8Array(64 * 1024);
    try {
      while (!this.#closing) {
        if (this.#paused) {
          await new Promise<void>((r) => (this.#resume = r));
          continue;
        }
        const n = await this.conn.read(chunk);
        if (n === null) break;
        this.#buf = concat(this.#buf, chunk.subarray(0, n));
        for (;;) {
          const r = parsePacket(this.#buf);
          if (!r) break;
          this.#buf = this.#buf.slice(r.size);
          this.#queue.push(r.packet);
          this.received.push(r.packet);
        }
        this.#notify();
      }
    } catch (e) {
      if (!this.#closing) this.#error = e;
    }
    this.#eof = true;
    this.#notify();
  }

  #notify() {
    for (const w of [...this.#waiters]) w();
  }

  /** Waits until `check` returns a value, the connection ends (undefined), or the timeout. */
  #waitUntil<T>(check: () => T | undefined, timeoutMs: number): Promise<T | "closed" | "timeout"> {
    return new Promise((resolve) => {
      const test = () => {
        const v = check();
        const r = v !== undefined ? v : this.#eof ? "closed" as const : undefined;
        if (r !== undefined) {
          this.#waiters.delete(test);
          clearTimeout(timer);
          resolve(r);
        }
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(test);
        resolve("timeout");
      }, timeoutMs);
      this.#waiters.add(test);
      test();
    });
  }

  /** Sends bytes. Errors (broker already closed) are swallowed when `ignoreErrors` is set. */
  async write(bytes: Uint8Array, ignoreErrors = false): Promise<void> {
    try {
      let o = 0;
      while (o < bytes.length) o += await this.conn.write(bytes.subarray(o));
    } catch (e) {
      if (!ignoreErrors) throw e;
    }
  }

  /** The next packet from the broker; throws on timeout or if the connection ends first. */
  async next(timeoutMs = 3_000): Promise<Packet> {
    const r = await this.#waitUntil(() => this.#queue.shift(), timeoutMs);
    if (r === "timeout") throw new Error(`no packet from broker within ${timeoutMs} ms`);
    if (r === "closed") {
      throw new Error(`connection closed by broker while waiting for a packet${this.#errText()}`);
    }
    return r;
  }

  /** The next packet, which must be of type `type` (else throws with the bytes received). */
  async expect(type: number, timeoutMs = 3_000): Promise<Packet> {
    const p = await this.next(timeoutMs);
    if (p.type !== type) {
      throw new Error(`expected ${NAMES[type]}, got ${describe(p)}`);
    }
    return p;
  }

  /** Resolves if nothing arrives (and the connection stays open) for `ms`; else throws. */
  async expectSilence(ms: number): Promise<void> {
    const r = await this.#waitUntil(() => this.#queue.shift(), ms);
    if (r === "closed") throw new Error(`connection closed by broker${this.#errText()}`);
    if (r !== "timeout") throw new Error(`unexpected packet from broker: ${describe(r)}`);
  }

  /**
   * Resolves once the broker closes the connection within `timeoutMs` (else throws), with the
   * packets that arrived before the close and were not consumed.
   */
  async expectClosed(timeoutMs = 3_000): Promise<Packet[]> {
    const r = await this.#waitUntil(() => undefined, timeoutMs);
    if (r === "timeout") {
      const pending = this.#queue.map(describe).join(", ");
      throw new Error(
        `connection still open after ${timeoutMs} ms` + (pending ? ` (received: ${pending})` : ""),
      );
    }
    return this.#queue.splice(0);
  }

  /** Packets received and not yet consumed by next()/expect(). */
  drain(): Packet[] {
    return this.#queue.splice(0);
  }

  /** Stops reading the socket (the kernel buffers fill up and the broker sees back-pressure). */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#resume?.();
  }

  /**
   * Closes the socket without DISCONNECT (an "abrupt" close, from MQTT's point of view).
   * An arrow function, so `defer(client.close)` works.
   */
  close = async (): Promise<void> => {
    this.#closing = true;
    try {
      this.conn.close();
    } catch { /* already closed */ }
    this.#resume?.();
    await this.#loop;
  };

  #errText(): string {
    return this.#error ? ` (${this.#error})` : "";
  }
}

/** Opens a raw connection, sends CONNECT and reads the CONNACK. */
export async function rawConnect(
  host: string,
  port: number,
  opts: ConnectOptions = {},
  timeoutMs = 3_000,
): Promise<{ client: RawClient; connack: Packet }> {
  const client = await RawClient.open(host, port);
  try {
    await client.write(connect(opts));
    const connack = await client.expect(PacketType.CONNACK, timeoutMs);
    return { client, connack };
  } catch (e) {
    await client.close();
    throw e;
  }
}

/** Subscribes on a raw connection and returns the granted QoS list. */
export async function rawSubscribe(
  client: RawClient,
  packetId: number,
  subs: [string, number][],
): Promise<number[]> {
  await client.write(subscribe(packetId, subs));
  const ack = await client.expect(PacketType.SUBACK);
  if (ack.packetId !== packetId) {
    throw new Error(`SUBACK packet id ${ack.packetId}, expected ${packetId}`);
  }
  return ack.granted!;
}

export function text(p: Packet): string {
  return td.decode(p.payload ?? new Uint8Array());
}
