/**
 * A minimal, fast MQTT 3.1.1 or 5.0 client connection for the load generator (Deno.connect).
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
} from "./mqtt_wire.ts";
import {
  type Connect5Options,
  encodeConnect5,
  encodeSubscribe5,
  Packet5Parser,
  type Packet5Sink,
} from "./mqtt5_wire.ts";
import { type Endpoint, openWire, type Wire } from "./wire_transport.ts";

/** Options of BenchConn.open; `version: 5` speaks MQTT 5.0 with the Connect5Options. */
export type OpenOptions = ConnectOptions & Connect5Options & {
  version?: 4 | 5;
  hostname?: string;
  timeoutMs?: number;
  /** Receives PUBLISHes from the start, even those that come with CONNACK (queued ones). */
  onPublish?: PublishHandler;
  /** Bytes per read (default 128 KiB). */
  readBuffer?: number;
  /** TLS, WebSocket or WSS instead of plain TCP to `port` (the endpoint's port is used). */
  endpoint?: Endpoint;
};

export type PublishHandler = (
  buf: Uint8Array,
  payloadOff: number,
  payloadLen: number,
  qos: number,
) => void;

export class BenchConn implements Packet5Sink {
  /** Set by receivers; called for every PUBLISH (after which a PUBACK is queued for QoS 1). */
  onPublishMsg: PublishHandler | null = null;
  /** Called once per read chunk after all its packets were handled. */
  onChunkEnd: (() => void) | null = null;
  /** Set by QoS 1 publishers; called for every PUBACK. */
  onPubackMsg: ((pid: number) => void) | null = null;
  closed = false;
  /** 5.0: the first broker DISCONNECT, error reason code or unresolvable alias, for the report. */
  failure: string | null = null;
  private fdClosed = false;
  /** Wall-clock ms (nowMs) at which the chunk being parsed was read. */
  chunkTime = 0;

  private readonly parser: PacketParser | Packet5Parser;
  private ackPids: number[] = [];
  /** First byte of each queued ack when a QoS 2 flow put other acks than PUBACK in the queue. */
  private ackFirsts: number[] = [];
  private mixedAcks = false;
  private writeChain: Promise<void> = Promise.resolve();
  private connackWaiter: ((rc: number) => void) | null = null;
  private subackWaiter: ((codes: number[]) => void) | null = null;
  private readonly readDone: Promise<void>;

  private constructor(
    private readonly conn: Wire,
    readonly version: 4 | 5,
    aliasMax: number,
    private readonly readBufferSize = 128 * 1024,
  ) {
    this.parser = version === 5 ? new Packet5Parser(aliasMax) : new PacketParser();
    this.readDone = this.readLoop();
  }

  /** 5.0: the broker's Topic Alias Maximum from CONNACK (0 for 3.1.1). */
  get brokerTopicAliasMaximum(): number {
    return this.parser instanceof Packet5Parser ? this.parser.brokerTopicAliasMaximum : 0;
  }

  /** 5.0: PUBLISHes received with a topic alias alone (0 for 3.1.1). */
  get aliasedPublishes(): number {
    return this.parser instanceof Packet5Parser ? this.parser.aliasedPublishes : 0;
  }

  /** Connects, sends CONNECT and waits for a successful CONNACK. */
  static async open(
    port: number,
    clientId: string,
    opts: OpenOptions = {},
  ): Promise<BenchConn> {
    const conn = await openWire(
      opts.endpoint ?? { hostname: opts.hostname ?? "127.0.0.1", port, transport: "tcp" },
    );
    const v5 = opts.version === 5;
    const c = new BenchConn(
      conn,
      v5 ? 5 : 4,
      v5 ? opts.topicAliasMaximum ?? 0 : 0,
      opts.readBuffer,
    );
    if (opts.onPublish) c.onPublishMsg = opts.onPublish;
    const rc = await withTimeout(
      new Promise<number>((resolve) => {
        c.connackWaiter = resolve;
        const connect = v5 ? encodeConnect5(clientId, opts) : encodeConnect(clientId, opts);
        c.write(connect).catch(() => resolve(-1));
      }),
      opts.timeoutMs ?? 10_000,
      `CONNACK for ${clientId}`,
    ).catch((e) => {
      c.close();
      throw e;
    });
    if (rc !== 0) {
      c.close();
      throw new Error(`CONNACK for ${clientId}: ${v5 ? "reason" : "return"} code ${rc}`);
    }
    return c;
  }

  async subscribe(topic: string, qos: number, timeoutMs = 10_000): Promise<void> {
    const codes = await withTimeout(
      new Promise<number[]>((resolve) => {
        this.subackWaiter = resolve;
        const subs = [{ topic, qos }];
        const p = this.version === 5 ? encodeSubscribe5(1, subs) : encodeSubscribe(1, subs);
        this.write(p).catch(() => resolve([0x80]));
      }),
      timeoutMs,
      `SUBACK for ${topic}`,
    );
    // 3.1.1: 0x80 is the only failure; 5.0: every reason code from 0x80 up (3.9.3).
    if (codes[0] >= 0x80) {
      throw new Error(`subscription to ${topic} refused (0x${codes[0].toString(16)})`);
    }
  }

  /** Writes all bytes; concurrent calls are queued in order. */
  write(data: Uint8Array): Promise<void> {
    const p = this.writeChain.then(() => this.writeAll(data));
    this.writeChain = p.catch(() => {});
    return p;
  }

  private writeAll(data: Uint8Array): Promise<void> {
    return this.conn.write(data);
  }

  private async readLoop(): Promise<void> {
    const buf = new Uint8Array(this.readBufferSize);
    try {
      while (true) {
        const n = await this.conn.read(buf);
        if (n === null) break;
        this.chunkTime = nowMs();
        this.parser.feed(buf.subarray(0, n), this);
        if (this.onChunkEnd) this.onChunkEnd();
        if (this.ackPids.length > 0) {
          const acks = encodePubacks(
            this.ackPids,
            this.ackPids.length,
            this.mixedAcks ? this.ackFirsts : undefined,
          );
          this.ackPids.length = 0;
          this.ackFirsts.length = 0;
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
    if (qos > 0) this.queueAck(qos === 2 ? 0x50 : 0x40, pid);
  }
  onPuback(pid: number): void {
    if (this.onPubackMsg) this.onPubackMsg(pid);
  }
  /** PUBREC -> PUBREL; PUBREL -> PUBCOMP; PUBCOMP ends a QoS 2 publish like a PUBACK. */
  onQos2(type: number, pid: number): void {
    if (type === 5) this.queueAck(0x62, pid);
    else if (type === 6) this.queueAck(0x70, pid);
    else if (this.onPubackMsg) this.onPubackMsg(pid);
  }
  private queueAck(first: number, pid: number): void {
    if (first !== 0x40) this.mixedAcks = true;
    this.ackPids.push(pid);
    this.ackFirsts.push(first);
  }
  onOther(_type: number): void {}
  onFailure(what: string): void {
    this.failure ??= what;
  }
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
