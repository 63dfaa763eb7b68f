/** Drives the broker core over in-memory streams: no sockets, no Deno API in the core. */
import { Decoder } from "../../src/codec/decoder.ts";
import { encode } from "../../src/codec/encoder.ts";
import type { Packet, ProtocolVersion } from "../../src/codec/packets.ts";
import type { Broker } from "../../src/broker/broker.ts";
import type { ByteConnection } from "../../src/broker/ports/connection.ts";

export interface MemoryClientOptions {
  /** "ip:port" the broker sees (per-address limits). */
  remoteAddress?: string;
  /** Username established by the transport (overrides CONNECT's). */
  username?: string;
}

export class MemoryClient {
  readonly received: Packet[] = [];
  closed = false;
  #toBroker: WritableStreamDefaultWriter<Uint8Array>;
  #waiters: (() => void)[] = [];
  #conn: ByteConnection;
  readonly version: ProtocolVersion;

  constructor(broker: Broker, version: ProtocolVersion = 4, opts: MemoryClientOptions = {}) {
    this.version = version;
    const up = new TransformStream<Uint8Array, Uint8Array>();
    const down = new TransformStream<Uint8Array, Uint8Array>();
    let closed = false;
    const toBroker = up.writable.getWriter();
    const fromBroker = down.readable.getReader();
    this.#conn = {
      readable: up.readable,
      writable: down.writable,
      remoteAddress: opts.remoteAddress ?? "memory:1",
      transport: "memory",
      username: opts.username,
      close: () => {
        if (closed) return;
        closed = true;
        // Through the held writer/reader: the streams themselves are locked.
        toBroker.close().catch(() => {});
        fromBroker.cancel().catch(() => {});
      },
    };
    this.#toBroker = toBroker;
    const decoder = new Decoder({ protocolVersion: version });
    (async () => {
      try {
        while (true) {
          const { value, done } = await fromBroker.read();
          if (done) break;
          decoder.push(value, (p) => this.received.push(p));
          this.#wake();
        }
      } catch {
        // cancelled by close
      }
      this.closed = true;
      this.#wake();
    })();
    broker.handleConnection(this.#conn);
  }

  #wake() {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  send(p: Packet): Promise<void> {
    return this.#toBroker.write(encode(p, this.version));
  }

  sendBytes(b: Uint8Array): Promise<void> {
    return this.#toBroker.write(b);
  }

  /** Like send, but ignores a connection the broker already closed. */
  async trySend(p: Packet): Promise<void> {
    try {
      await this.send(p);
    } catch {
      // closed by the broker
    }
  }

  /** Like sendBytes, but ignores a connection the broker already closed. */
  async trySendBytes(b: Uint8Array): Promise<void> {
    try {
      await this.sendBytes(b);
    } catch {
      // closed by the broker
    }
  }

  /** Received packets of `type` not yet taken by next(). */
  pending(type: Packet["type"]): Packet[] {
    return this.received.filter((p) => p.type === type);
  }

  /** Waits for (and removes) the first received packet matching `pred`. */
  async next<T extends Packet["type"]>(
    type: T,
    timeoutMs = 2000,
  ): Promise<Extract<Packet, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const i = this.received.findIndex((p) => p.type === type);
      if (i >= 0) return this.received.splice(i, 1)[0] as Extract<Packet, { type: T }>;
      if (this.closed) throw new Error(`connection closed while waiting for ${type}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${type}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async waitClosed(timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error("connection not closed");
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async connect(clientId: string, clean = true, extra: Partial<Packet> = {}) {
    await this.send({
      type: "connect",
      protocolName: this.version === 3 ? "MQIsdp" : "MQTT",
      protocolVersion: this.version,
      clean,
      keepalive: 0,
      clientId,
      ...extra,
    } as Packet);
    return await this.next("connack");
  }

  close() {
    this.#toBroker.close().catch(() => {});
  }
}
