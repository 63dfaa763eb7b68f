/**
 * A minimal, fast MQTT 3.1.1 client connection for the load generator (Deno.connect).
 *
 * One read loop per connection feeds the incremental parser; QoS 1 deliveries are acknowledged
 * with one coalesced write per received chunk. Writes are serialized per connection.
 */

import {
  type ConnectOptions,
  encodeConnect,
  encodePubacks,
  encodeSubscribe,
  nowMs,
  PacketParser,
  type PacketSink,
} from "./mqtt_wire.ts";

export type PublishHandler = (
  buf: Uint8Array,
  payloadOff: number,
  payloadLen: number,
  qos: number,
) => void;

export class BenchConn implements PacketSink {
  /** Set by receivers; called for every PUBLISH (after which a PUBACK is queued for QoS 1). */
  onPublishMsg: PublishHandler | null = null;
  /** Called once per read chunk after all its packets were handled. */
  onChunkEnd: (() => void) | null = null;
  /** Set by QoS 1 publishers; called for every PUBACK. */
  onPubackMsg: ((pid: number) => void) | null = null;
  closed = false;
  private fdClosed = false;
  /** Wall-clock ms (nowMs) at which the chunk being parsed was read. */
  chunkTime = 0;

  private parser = new PacketParser();
  private ackPids: number[] = [];
  private writeChain: Promise<void> = Promise.resolve();
  private connackWaiter: ((rc: number) => void) | null = null;
  private subackWaiter: ((codes: number[]) => void) | null = null;
  private readonly readDone: Promise<void>;

  private constructor(private readonly conn: Deno.TcpConn) {
    this.readDone = this.readLoop();
  }

  /** Connects, sends CONNECT and waits for a successful CONNACK. */
  static async open(
    port: number,
    clientId: string,
    opts: ConnectOptions & { hostname?: string; timeoutMs?: number } = {},
  ): Promise<BenchConn> {
    const conn = await Deno.connect({ hostname: opts.hostname ?? "127.0.0.1", port });
    conn.setNoDelay(true);
    const c = new BenchConn(conn);
    const rc = await withTimeout(
      new Promise<number>((resolve) => {
        c.connackWaiter = resolve;
        c.write(encodeConnect(clientId, opts)).catch(() => resolve(-1));
      }),
      opts.timeoutMs ?? 10_000,
      `CONNACK for ${clientId}`,
    ).catch((e) => {
      c.close();
      throw e;
    });
    if (rc !== 0) {
      c.close();
      throw new Error(`CONNACK for ${clientId}: return code ${rc}`);
    }
    return c;
  }

  async subscribe(topic: string, qos: number, timeoutMs = 10_000): Promise<void> {
    const codes = await withTimeout(
      new Promise<number[]>((resolve) => {
        this.subackWaiter = resolve;
        this.write(encodeSubscribe(1, [{ topic, qos }])).catch(() => resolve([0x80]));
      }),
      timeoutMs,
      `SUBACK for ${topic}`,
    );
    if (codes[0] === 0x80) throw new Error(`subscription to ${topic} refused`);
  }

  /** Writes all bytes; concurrent calls are queued in order. */
  write(data: Uint8Array): Promise<void> {
    const p = this.writeChain.then(() => this.writeAll(data));
    this.writeChain = p.catch(() => {});
    return p;
  }

  private async writeAll(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) off += await this.conn.write(data.subarray(off));
  }

  private async readLoop(): Promise<void> {
    const buf = new Uint8Array(128 * 1024);
    try {
      while (true) {
        const n = await this.conn.read(buf);
        if (n === null) break;
        this.chunkTime = nowMs();
        this.parser.feed(buf.subarray(0, n), this);
        if (this.onChunkEnd) this.onChunkEnd();
        if (this.ackPids.length > 0) {
          const acks = encodePubacks(this.ackPids);
          this.ackPids.length = 0;
          await this.write(acks);
        }
      }
    } catch {
      // closed or reset: the scenario notices through its counters
    }
    this.closed = true;
    this.connackWaiter?.(-1);
    this.subackWaiter?.([0x80]);
  }

  close(): Promise<void> {
    this.closed = true;
    if (!this.fdClosed) {
      this.fdClosed = true;
      try {
        this.conn.close();
      } catch {
        // already closed
      }
    }
    return this.readDone;
  }

  // PacketSink
  onConnack(rc: number): void {
    const w = this.connackWaiter;
    this.connackWaiter = null;
    w?.(rc);
  }
  onSuback(_pid: number, codes: number[]): void {
    const w = this.subackWaiter;
    this.subackWaiter = null;
    w?.(codes);
  }
  onPublish(buf: Uint8Array, off: number, len: number, qos: number, pid: number): void {
    if (this.onPublishMsg) this.onPublishMsg(buf, off, len, qos);
    if (qos > 0) this.ackPids.push(pid);
  }
  onPuback(pid: number): void {
    if (this.onPubackMsg) this.onPubackMsg(pid);
  }
  onOther(_type: number): void {}
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
