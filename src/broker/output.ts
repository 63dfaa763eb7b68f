/**
 * The output side of a client connection: one buffer per connection, the commit gate, and the
 * graceful end. It is what deliveries see of a connected client (Session.client).
 *
 * Output is coalesced: everything written during one synchronous turn (a whole read chunk of
 * packets, or a whole fan-out) leaves in a single transport write. Output that must not leave
 * before the store has committed (acks of persisted messages, QoS 2 deliveries to persistent
 * sessions) waits behind a commit barrier; later output queues behind it to keep order.
 */
import { publishSizeV4, writePublishHeaderV4, writePublishV4 } from "../codec/encoder.ts";
import type { ProtocolVersion, QoS } from "../codec/packets.ts";
import { utf8Length } from "../codec/utf8.ts";
import type { Logger } from "../log.ts";
import type { ClientInfo, StoredMessage } from "./model.ts";
import type { Mqtt5Connection } from "./mqtt5.ts";
import { type PublishTemplate, publishTemplate } from "./outgoing.ts";
import type { RawIo } from "./ports/connection.ts";
import type { BrokerStats } from "./stats.ts";
import { BY_REFERENCE_BYTES, GateSegment, joined, NO_SPILL } from "./output_parts.ts";
import { giveOutputBuffer, takeOutputBuffer } from "./output_buffers.ts";

export type ClientState = "new" | "connecting" | "connected" | "closed";

/** What the output side needs from the broker. */
export interface OutputHost {
  readonly options: { readonly outboundBufferBytes: number };
  readonly log: Logger;
  /** The node's counters: bytes and non-PUBLISH packets sent are counted here. */
  readonly stats: BrokerStats;
  /** See Persistence.commitBarrier. */
  commitBarrier(): Promise<void> | null;
  /** The client went over its outbound limit (the slow-consumer clock starts). */
  congested(client: ClientOutput): void;
  /** The client has room again: queued deliveries may flow. */
  drained(client: ClientOutput): void;
}

// ClientOutput#flags: one field for what would be three booleans (8 bytes each per connection).
/** A write the transport made us wait for is in progress. */
const WRITING = 1;
/** A flush of this turn's output is queued. */
const FLUSH_SCHEDULED = 2;
/** end() was called: nothing more is read or handled. */
const ENDING = 4;
/**
 * The CONNACKs accepting a 3.1/3.1.1 client (Session Present 0 and 1), written as they are when
 * they are a connection's first output: no output buffer of its own for each connect (a 64-byte
 * one held on V8's heap, which the write then had to move off it). Never written to: each is
 * exactly as long as its 4 bytes, so #room moves it to a buffer of the connection's own before
 * anything is added.
 */
const CONNACK_ACCEPTED = [0, 1].map((present) => {
  const b = new Uint8Array(new ArrayBuffer(4));
  b.set([0x20, 2, present, 0]);
  return b;
});

/** The shared empty gate; frozen, so a push that skipped the copy-on-write check would throw. */
const NO_GATE: GateSegment[] = Object.freeze([]) as unknown as GateSegment[];

export abstract class ClientOutput<H extends OutputHost = OutputHost> {
  protected readonly host: H;
  protected readonly io: RawIo;
  state: ClientState = "new";
  version: ProtocolVersion = 4;
  info: ClientInfo;
  closeReason = "";
  /** What only an MQTT 5.0 connection has; null for 3.1/3.1.1 (set at CONNECT). */
  v5: Mqtt5Connection | null = null;
  /**
   * QoS 1/2 deliveries this connection may have unacknowledged: the broker's max-inflight, or
   * less if a 5.0 client's Receive Maximum says so (set at CONNECT).
   */
  inflightWindow = 1;

  /** Output waiting for the next write; packets are appended in place (no per-packet buffer). */
  #buf: Uint8Array | null = null;
  #len = 0;
  /**
   * Output that goes before #buf's: earlier buffer contents and large payloads handed over by
   * reference (see BY_REFERENCE_BYTES), in order, and how many bytes they hold.
   */
  #spill: Uint8Array[] = NO_SPILL;
  #spillBytes = 0;
  /**
   * Capacity for the next output buffer (the last write's size), so it rarely has to grow. The
   * first one (a CONNACK, typically) is small enough for V8 to keep in its heap: no separate
   * allocation of the bytes per connection.
   */
  #hint = 64;
  #writingBytes = 0;
  #flags = 0;
  /** NO_GATE until output is first held back: most connections never need an array here. */
  #gate: GateSegment[] = NO_GATE;
  #congestedSince = 0;

  constructor(host: H, io: RawIo, info: ClientInfo) {
    this.host = host;
    this.io = io;
    this.info = info;
  }

  /**
   * Closes now; the will is published unless `publishWill` is false or the client said goodbye.
   * A 5.0 client is first sent DISCONNECT with `reasonCode`, if given.
   */
  abstract close(reason: string, publishWill?: boolean, reasonCode?: number): void;

  /** Describes the client for log lines. */
  protected who(): string {
    return this.info.clientId
      ? `client ${this.info.clientId} (${this.info.remoteAddress})`
      : this.info.remoteAddress;
  }

  /** A method, not a property check, because `state` changes behind awaits. */
  get isClosed(): boolean {
    return this.state === "closed";
  }

  /** True once end() has been called: nothing more is read or handled. */
  protected get ending(): boolean {
    return (this.#flags & ENDING) !== 0;
  }

  /** Bytes waiting to be written (buffered plus the write in progress). */
  get buffered(): number {
    return this.#len + this.#spillBytes + this.#writingBytes;
  }

  /** True while the client is not keeping up; QoS 0 is dropped and feeding stops. */
  get congested(): boolean {
    return this.buffered > this.host.options.outboundBufferBytes;
  }

  /** Bytes waiting behind store commits (they do not count in `buffered`). */
  get gatedBytes(): number {
    let n = 0;
    for (const seg of this.#gate) n += seg.len;
    return n;
  }

  /** ms since the client went over its outbound limit, 0 if it is not over it. */
  get congestedSince(): number {
    return this.#congestedSince;
  }

  /**
   * The gate segment new output must join, or null when it may go straight to the buffer. With
   * `durable`, output waits until everything the store was told so far is committed.
   */
  #gateFor(durable: boolean): GateSegment | null {
    if (durable) {
      const barrier = this.host.commitBarrier();
      if (barrier) {
        const last = this.#gate[this.#gate.length - 1];
        if (last && last.barrier === barrier) return last;
        const seg = new GateSegment(barrier);
        if (this.#gate === NO_GATE) this.#gate = [];
        this.#gate.push(seg);
        if (this.#gate.length === 1) this.#releaseGate();
        return seg;
      }
    }
    // Output after gated output keeps its order.
    return this.#gate.length > 0 ? this.#gate[this.#gate.length - 1] : null;
  }

  /** Queues bytes for the client (see #gateFor for `durable`). */
  send(bytes: Uint8Array, durable = false): void {
    if (this.state === "closed") return;
    this.host.stats.controlOut++;
    const seg = this.#gateFor(durable);
    if (seg) seg.append(bytes);
    else this.enqueue(bytes);
  }

  /**
   * PUBACK (0x40), PUBREC (0x50), PUBREL (0x62) or PUBCOMP (0x70) without allocating. A 5.0
   * reason code other than Success adds one byte (no properties: 3.4.2.1); 3.1.1 never has one.
   */
  sendAck(first: number, packetId: number, durable = false, reasonCode = 0): void {
    if (this.state === "closed") return;
    this.host.stats.controlOut++;
    const seg = this.#gateFor(durable);
    // 5.0 sends Success without properties in this same 2-byte form (3.4.2.1).
    const n = reasonCode === 0 ? 4 : 5;
    const buf = seg ? seg.room(n) : this.#room(n);
    const i = seg ? seg.len : this.#len;
    buf[i] = first;
    buf[i + 1] = n - 2;
    buf[i + 2] = packetId >> 8;
    buf[i + 3] = packetId & 0xff;
    if (n === 5) buf[i + 4] = reasonCode;
    if (seg) seg.len = i + n;
    else {
      this.#len = i + n;
      this.#queued();
    }
  }

  /**
   * The CONNACK accepting a 3.1/3.1.1 client, without allocating: 0x20, 2, Session Present,
   * return code 0 is the layout of the 4-byte acks with `packetId` = Session Present << 8.
   */
  sendConnackAccepted(sessionPresent: boolean): void {
    if (this.#buf === null && this.#gate === NO_GATE && this.state !== "closed") {
      this.host.stats.controlOut++;
      this.#buf = CONNACK_ACCEPTED[sessionPresent ? 1 : 0];
      this.#len = 4;
      this.#queued();
      return;
    }
    this.sendAck(0x20, sessionPresent ? 0x100 : 0);
  }

  /** A PUBLISH from a shared template, its packet id and DUP patched in the output buffer. */
  sendPublish(t: PublishTemplate, packetId: number, dup: boolean, durable = false): void {
    if (this.state === "closed") return;
    const seg = this.#gateFor(durable);
    const all = t.bytes.byteLength;
    // A large payload follows from the shared template by reference: only the header is copied.
    const n = !seg && all - t.payloadOffset >= BY_REFERENCE_BYTES ? t.payloadOffset : all;
    let buf: Uint8Array;
    let at: number;
    if (seg) {
      buf = seg.room(n);
      at = seg.len;
      seg.len = at + n;
    } else {
      buf = this.#room(n);
      at = this.#len;
      this.#len = at + n;
    }
    buf.set(n === all ? t.bytes : t.bytes.subarray(0, n), at);
    if (t.packetIdOffset >= 0) {
      buf[at + t.packetIdOffset] = packetId >> 8;
      buf[at + t.packetIdOffset + 1] = packetId & 0xff;
    }
    if (dup) buf[at] |= 0x08;
    if (n !== all) this.#byReference(t.bytes.subarray(n));
    if (!seg) this.#queued();
  }

  /**
   * A PUBLISH of `msg` for this client alone, written straight into the output buffer: a
   * message with one subscriber (point-to-point, fan-in) then costs no shared template, which
   * would be one more buffer allocation and copy per message. A 3.1.1 client falls back to the
   * template when the output is gated; a 5.0 client's PUBLISH is prepared by its Mqtt5Connection
   * (false when it exceeds the client's Maximum Packet Size: not sent, MQTT-3.1.2-24).
   */
  sendMessage(
    msg: StoredMessage,
    qos: QoS,
    retain: boolean,
    packetId: number,
    durable = false,
  ): boolean {
    if (this.state === "closed") return true;
    if (this.v5 !== null) {
      if (!this.v5.prepare(msg, qos, retain, null, true)) return false;
      this.sendPrepared(packetId, false, durable);
      return true;
    }
    if (durable || this.#gate.length > 0) {
      this.sendPublish(publishTemplate(msg, this.version, qos, retain), packetId, false, durable);
      return true;
    }
    const topicBytes = utf8Length(msg.topic);
    const size = msg.payload.byteLength;
    if (size >= BY_REFERENCE_BYTES) {
      const h = publishSizeV4(topicBytes, size, qos) - size;
      this.#len = writePublishHeaderV4(
        this.#room(h),
        this.#len,
        msg.topic,
        topicBytes,
        size,
        qos,
        retain,
        packetId,
      );
      this.#byReference(msg.payload);
      this.#queued();
      return true;
    }
    const n = publishSizeV4(topicBytes, size, qos);
    const buf = this.#room(n);
    this.#len = writePublishV4(
      buf,
      this.#len,
      msg.topic,
      topicBytes,
      msg.payload,
      qos,
      retain,
      packetId,
    );
    this.#queued();
    return true;
  }

  /**
   * The 5.0 PUBLISH this connection's Mqtt5Connection.prepare chose, with `packetId`: the shared
   * template copied in, or the PUBLISH written straight into the output buffer (or the gate).
   */
  sendPrepared(packetId: number, dup: boolean, durable = false): void {
    const v5 = this.v5!;
    const t = v5.preparedTemplate;
    if (t !== null) {
      this.sendPublish(t, packetId, dup, durable);
      return;
    }
    if (this.state === "closed") return;
    const n = v5.preparedSize;
    const seg = this.#gateFor(durable);
    if (seg) seg.len = v5.writePrepared(seg.room(n), seg.len, packetId, dup);
    else {
      this.#len = v5.writePrepared(this.#room(n), this.#len, packetId, dup);
      this.#queued();
    }
  }

  /** Queues bytes that must not leave before `barrier` resolves; later output waits too. */
  sendAfter(barrier: Promise<void>, bytes: Uint8Array): void {
    if (this.state === "closed") return;
    this.host.stats.controlOut++;
    if (this.#gate === NO_GATE) this.#gate = [];
    this.#gate.push(new GateSegment(barrier, bytes));
    if (this.#gate.length === 1) this.#releaseGate();
  }

  #releaseGate(): void {
    const seg = this.#gate[0];
    seg.barrier.then(() => {
      if (this.state === "closed") return;
      this.#gate.shift();
      if (this.#gate.length === 0) this.#gate = NO_GATE;
      if (seg.len > 0) this.enqueue(seg.buf.subarray(0, seg.len));
      if (this.#gate.length > 0) this.#releaseGate();
      // Whatever waited for the gate to open (retained messages after a SUBACK) may flow.
      else if (this.state === "connected") this.host.drained(this);
    }, (err) => {
      this.host.log.error(
        `store commit failed (${err?.message ?? err}); closing ${this.who()} without ` +
          `acknowledging its pending messages`,
      );
      this.close("store commit failed");
    });
  }

  /** The output buffer with room for `n` more bytes. */
  #room(n: number): Uint8Array {
    let buf = this.#buf;
    if (buf === null) {
      buf = this.#buf = takeOutputBuffer(n > this.#hint ? n : this.#hint);
    } else if (buf.byteLength - this.#len < n) {
      const next = takeOutputBuffer(Math.max(this.#len + n, buf.byteLength * 2, this.#hint));
      next.set(buf.subarray(0, this.#len));
      giveOutputBuffer(buf);
      buf = this.#buf = next;
    }
    return buf;
  }

  /**
   * Queues `bytes` as they are, after everything buffered so far (which moves to #spill, so that
   * the order holds); later output starts a new buffer.
   */
  #byReference(bytes: Uint8Array): void {
    if (this.#spill === NO_SPILL) this.#spill = [];
    if (this.#len > 0) {
      this.#spill.push(this.#buf!.subarray(0, this.#len));
      this.#spillBytes += this.#len;
      this.#buf = null;
      this.#len = 0;
    }
    this.#spill.push(bytes);
    this.#spillBytes += bytes.byteLength;
  }

  /** Appends bytes to the output buffer, past any gate (CONNACK refusals use it directly). */
  protected enqueue(bytes: Uint8Array): void {
    const n = bytes.byteLength;
    const buf = this.#room(n);
    buf.set(bytes, this.#len);
    this.#len += n;
    this.#queued();
  }

  #queued(): void {
    if ((this.#flags & (WRITING | FLUSH_SCHEDULED)) === 0) {
      this.#flags |= FLUSH_SCHEDULED;
      if (ClientOutput.#toFlush.push(this) === 1) queueMicrotask(ClientOutput.#flushAll);
    }
    if (this.#congestedSince === 0 && this.congested) {
      this.#congestedSince = Date.now();
      this.host.congested(this);
    }
  }

  /** Clients with output queued this turn: one microtask flushes them all. */
  static #toFlush: ClientOutput[] = [];

  static #flushAll(): void {
    const all = ClientOutput.#toFlush;
    ClientOutput.#toFlush = [];
    for (const c of all) c.#flush();
  }

  /**
   * Hands the buffered output to the transport. Synchronous while the transport accepts it (the
   * common case); only a full transport buffer makes it wait, and then for one promise.
   */
  #flush(): void {
    this.#flags &= ~FLUSH_SCHEDULED;
    if (this.#flags & WRITING || this.state === "closed") return;
    while (this.#len > 0 || this.#spillBytes > 0) {
      const n = this.#len + this.#spillBytes;
      const whole = this.#spillBytes > 0 ? null : this.#buf;
      const out = this.#spillBytes > 0 ? this.#takeAll() : this.#takeBuffer();
      this.host.stats.bytesOut += n;
      let wait: Promise<void> | undefined;
      try {
        wait = out instanceof Uint8Array ? this.io.write(out) : this.io.writeMany!(out);
      } catch (err) {
        this.#writeFailed(err);
        return;
      }
      if (wait) {
        this.#flags |= WRITING;
        this.#writingBytes = n;
        wait.then(() => this.#written(), (err) => {
          this.#flags &= ~WRITING;
          this.#writeFailed(err);
        });
        return;
      }
      if (whole !== null && this.io.returnsBytes) giveOutputBuffer(whole);
    }
    if (this.#congestedSince !== 0 && !this.congested) {
      this.#congestedSince = 0;
      if (this.state === "connected") this.host.drained(this);
    }
    if (this.#flags & ENDING && this.#gate.length === 0) this.#finish();
  }

  /** The buffer's bytes, which belong to the transport from now on: a new buffer starts. */
  #takeBuffer(): Uint8Array {
    const n = this.#len;
    const buf = this.#buf!;
    this.#hint = n < 256 ? 256 : n > 65536 ? 65536 : n;
    this.#buf = null;
    this.#len = 0;
    return n === buf.byteLength ? buf : buf.subarray(0, n);
  }

  /**
   * The spill and then the buffer's bytes: as they are for a transport that writes several
   * buffers in one call, else joined (the one copy a by-reference payload then costs).
   */
  #takeAll(): Uint8Array | Uint8Array[] {
    const parts = this.#spill;
    if (this.#len > 0) parts.push(this.#takeBuffer());
    this.#spill = NO_SPILL;
    this.#spillBytes = 0;
    return this.io.writeMany !== undefined ? parts : joined(parts);
  }

  /** The transport took a write it had made us wait for: room again. */
  #written(): void {
    this.#flags &= ~WRITING;
    this.#writingBytes = 0;
    // Let queued QoS 1/2 messages flow.
    if (this.state === "connected") this.host.drained(this);
    this.#flush();
  }

  #writeFailed(err: unknown): void {
    if (!this.isClosed) this.close(`write failed: ${(err as Error)?.message ?? err}`);
  }

  /** Stops reading, lets queued output drain (bounded), then closes. */
  end(reason: string): void {
    if (this.#flags & ENDING || this.state === "closed") return;
    this.#flags |= ENDING;
    this.closeReason = reason;
    // Nothing more is read from a connection on its way out.
    this.io.pause();
    if (
      (this.#flags & WRITING) === 0 && this.#len === 0 && this.#spillBytes === 0 &&
      this.#gate.length === 0
    ) {
      queueMicrotask(() => this.#finish());
    } else {
      // A peer that never reads must not keep the socket forever.
      setTimeout(() => this.#finish(), 2000);
    }
  }

  #finish(): void {
    if (this.state === "closed") return;
    this.close(this.closeReason || "closed", false);
  }

  /**
   * The last write of a connection being closed: what is buffered (not what waits for a
   * commit) followed by `last`; `done` runs once the transport took it (or after 2 s), so the
   * socket is closed behind it.
   */
  protected writeLast(last: Uint8Array, done: () => void): void {
    const out = this.#spillBytes + this.#len > 0
      ? joined([
        ...this.#spill,
        ...(this.#len > 0 ? [this.#buf!.subarray(0, this.#len)] : []),
        last,
      ])
      : last;
    this.discardOutput();
    const stats = this.host.stats;
    stats.bytesOut += out.byteLength;
    stats.controlOut++;
    let wait: Promise<void> | undefined;
    try {
      wait = this.io.write(out);
    } catch {
      done();
      return;
    }
    if (!wait) {
      done();
      return;
    }
    const timer = setTimeout(done, 2000);
    wait.then(() => {}, () => {}).finally(() => {
      clearTimeout(timer);
      done();
    });
  }

  /** Drops whatever output is still waiting (the connection is closing). */
  protected discardOutput(): void {
    this.#buf = null;
    this.#len = 0;
    this.#spill = NO_SPILL;
    this.#spillBytes = 0;
    this.#gate = NO_GATE;
  }
}
