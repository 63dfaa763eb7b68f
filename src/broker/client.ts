/**
 * One network connection speaking MQTT: reads bytes into the decoder, dispatches packets to
 * the broker, and owns the connection's outbound buffer.
 *
 * Output is coalesced: everything written during one synchronous turn (a whole read chunk of
 * packets, or a whole fan-out) leaves in a single transport write. Output that must not leave
 * before the store has committed (acks of persisted messages, QoS 2 deliveries to persistent
 * sessions) waits behind a commit barrier; later output queues behind it to keep order.
 */
import { Decoder } from "../codec/decoder.ts";
import { encode, publishSizeV4, writePublishV4 } from "../codec/encoder.ts";
import { utf8Length } from "../codec/utf8.ts";
import { ProtocolError } from "../codec/errors.ts";
import type {
  ConnectPacket,
  Packet,
  ProtocolVersion,
  PublishPacket,
  QoS,
  SubscribePacket,
  UnsubscribePacket,
  Will,
} from "../codec/packets.ts";
import { ConnackReturnCode, ReasonCode } from "../codec/reason_codes.ts";
import type { ByteConnection, RawIo, RawSink } from "./ports/connection.ts";
import { streamRawIo } from "./stream_io.ts";
import type { Broker } from "./broker.ts";
import type { ClientInfo } from "./model.ts";
import { type PublishTemplate, publishTemplate } from "./outgoing.ts";
import type { StoredMessage } from "./model.ts";
import type { Session } from "./session.ts";

type State = "new" | "connecting" | "connected" | "closed";

const EMPTY = new Uint8Array(0);

/**
 * Output held until `barrier` (a store commit) resolves, packed into one buffer: an ack or a
 * PUBLISH behind a commit is a few bytes appended, not a buffer of its own.
 */
class GateSegment {
  readonly barrier: Promise<void>;
  buf: Uint8Array;
  len: number;

  /** `first` is adopted, not copied; it has no spare room, so nothing is ever written into it. */
  constructor(barrier: Promise<void>, first: Uint8Array = EMPTY) {
    this.barrier = barrier;
    this.buf = first;
    this.len = first.byteLength;
  }

  /** The buffer with room for `n` more bytes at `len`. */
  room(n: number): Uint8Array {
    if (this.buf.byteLength - this.len < n) {
      const next = new Uint8Array(Math.max(this.len + n, this.buf.byteLength * 2, 64));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
    }
    return this.buf;
  }

  append(bytes: Uint8Array): void {
    this.room(bytes.byteLength).set(bytes, this.len);
    this.len += bytes.byteLength;
  }
}

const PINGRESP = new Uint8Array([0xd0, 0x00]);
/** The shared empty gate; frozen, so a push that skipped the copy-on-write check would throw. */
const NO_GATE: GateSegment[] = Object.freeze([]) as unknown as GateSegment[];

export class Client implements RawSink {
  readonly broker: Broker;
  readonly conn: ByteConnection;
  state: State = "new";
  session: Session | null = null;
  info: ClientInfo;
  version: ProtocolVersion = 4;
  will: Will | undefined;
  keepalive = 0;
  /** When the last bytes arrived from the client (ms). Our own writes do not count. */
  lastReceived = Date.now();
  /** Set when the broker must refuse this connection once its CONNECT arrives. */
  refuse: number | null = null;

  readonly #decoder: Decoder;
  readonly #io: RawIo;
  /** Output waiting for the next write; packets are appended in place (no per-packet buffer). */
  #buf: Uint8Array | null = null;
  #len = 0;
  /** Capacity for the next output buffer (the last write's size), so it rarely has to grow. */
  #hint = 256;
  #writingBytes = 0;
  #writing = false;
  #flushScheduled = false;
  #ending = false;
  /** NO_GATE until output is first held back: most connections never need an array here. */
  #gate: GateSegment[] = NO_GATE;
  #backlog: Packet[] | null = null;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #keepaliveTimer: ReturnType<typeof setTimeout> | undefined;
  #congestedSince = 0;
  #gracefulDisconnect = false;
  closeReason = "";

  constructor(broker: Broker, conn: ByteConnection) {
    this.broker = broker;
    this.conn = conn;
    this.info = {
      clientId: "",
      remoteAddress: conn.remoteAddress,
      transport: conn.transport,
      protocolVersion: 4,
    };
    this.#decoder = new Decoder({ maxPacketSize: broker.options.maxPacketSize });
    this.#io = conn.raw ?? streamRawIo(conn);
  }

  /** Starts reading; the transport pushes chunks into onData until onEnd. Never throws. */
  run(): void {
    const timeout = this.refuse !== null
      ? Math.min(2, this.broker.options.connectTimeout)
      : this.broker.options.connectTimeout;
    this.#connectTimer = setTimeout(() => {
      this.#connectTimer = undefined;
      if (this.state === "new") this.close("no CONNECT within connect timeout");
    }, timeout * 1000);
    try {
      this.#io.start(this);
    } catch (err) {
      this.close(`connection error: ${(err as Error)?.message ?? err}`);
    }
  }

  /** RawSink: one chunk from the transport, decoded and dispatched synchronously. */
  onData(chunk: Uint8Array): void {
    if (this.state === "closed" || this.#ending) return;
    this.lastReceived = Date.now();
    try {
      this.#decoder.push(chunk, Client.#packet, this);
    } catch (err) {
      this.#failed(err);
    }
  }

  /** RawSink: end of the byte stream, or a read error. */
  onEnd(error?: Error): void {
    if (this.state === "closed") return;
    if (error) this.close(`connection error: ${error.message}`);
    else if (!this.#ending) this.close("connection closed by client");
  }

  #failed(err: unknown): void {
    if (err instanceof ProtocolError) {
      this.broker.log.warn(
        `protocol error from ${this.#who()}: ${err.message}; closing connection`,
      );
      this.close(`protocol error: ${err.message}`);
    } else if (this.state !== "closed") {
      this.close(`internal error: ${(err as Error)?.message ?? err}`);
      this.broker.log.error(
        `error handling input from ${this.#who()}: ${(err as Error)?.stack ?? err}`,
      );
    }
  }

  #who(): string {
    return this.info.clientId
      ? `client ${this.info.clientId} (${this.info.remoteAddress})`
      : this.info.remoteAddress;
  }

  /** One function for all clients (called with `this` bound by the decoder), not one each. */
  static #packet(this: Client, p: Packet): void {
    this.#onPacket(p);
  }

  #onPacket(p: Packet): void {
    if (this.#ending || this.state === "closed") return;
    if (this.state === "connecting") {
      (this.#backlog ??= []).push(p);
      return;
    }
    if (this.state === "new") {
      if (p.type !== "connect") {
        // MQTT-3.1.0-1: the first packet must be CONNECT; nothing else is processed.
        throw new ProtocolError(
          `${p.type.toUpperCase()} before CONNECT`,
          "MQTT-3.1.0-1",
          ReasonCode.ProtocolError,
        );
      }
      this.state = "connecting";
      // Packets already in this chunk wait in the backlog; no more are read until CONNACK.
      this.#io.pause();
      this.#handleConnect(p).catch((err) => {
        if (err instanceof ProtocolError) this.#failed(err);
        else {
          this.broker.log.error(`CONNECT handling failed for ${this.#who()}: ${err}`);
          this.close("internal error during CONNECT");
        }
      }).finally(() => {
        if (this.state !== "closed" && !this.#ending) this.#io.resume();
      });
      return;
    }
    this.#dispatch(p);
  }

  #dispatch(p: Packet): void {
    const broker = this.broker;
    switch (p.type) {
      case "publish":
        broker.handlePublish(this, p as PublishPacket);
        return;
      case "puback":
        broker.handlePuback(this, p.packetId);
        return;
      case "pubrec":
        broker.handlePubrec(this, p.packetId);
        return;
      case "pubrel":
        broker.handlePubrel(this, p.packetId);
        return;
      case "pubcomp":
        broker.handlePubcomp(this, p.packetId);
        return;
      case "subscribe":
        broker.handleSubscribe(this, p as SubscribePacket);
        return;
      case "unsubscribe":
        broker.handleUnsubscribe(this, p as UnsubscribePacket);
        return;
      case "pingreq":
        this.send(PINGRESP);
        return;
      case "disconnect":
        // MQTT-3.14.4-3: a clean DISCONNECT discards the will.
        this.#gracefulDisconnect = true;
        this.will = undefined;
        this.close("client sent DISCONNECT");
        return;
      case "connect":
        throw new ProtocolError("second CONNECT", "MQTT-3.1.0-2", ReasonCode.ProtocolError);
      default:
        throw new ProtocolError(
          `${p.type.toUpperCase()} is not sent by clients`,
          "MQTT-4.8.0-1",
          ReasonCode.ProtocolError,
        );
    }
  }

  async #handleConnect(p: ConnectPacket): Promise<void> {
    clearTimeout(this.#connectTimer);
    // Not kept: a cleared timer still holds ~300 bytes per idle connection.
    this.#connectTimer = undefined;
    const level = p.protocolVersion as number;
    const nameOk = (level === 3 && p.protocolName === "MQIsdp") ||
      ((level === 4 || level === 5) && p.protocolName === "MQTT");
    if (level === 5) {
      // The codec speaks 5.0; the core answers it once MQTT 5 is switched on.
      this.version = 5;
      this.#refuse(ReasonCode.UnsupportedProtocolVersion, "MQTT 5.0 is not enabled yet");
      return;
    }
    if (!nameOk || (level !== 3 && level !== 4)) {
      // MQTT-3.1.2-2: unacceptable protocol level -> 0x01 and close.
      this.#refuse(
        ConnackReturnCode.UnacceptableProtocolVersion,
        `unsupported protocol ${JSON.stringify(p.protocolName)} level ${level}`,
      );
      return;
    }
    this.version = level as ProtocolVersion;
    this.info.protocolVersion = level;
    if (this.refuse !== null) {
      this.#refuse(this.refuse, "connection limit reached");
      return;
    }
    let clientId = p.clientId;
    if (clientId.length === 0) {
      if (level === 3) {
        // MQTT 3.1 has no server-assigned identifiers (1 to 23 characters); Mosquitto refuses
        // them the same way. Longer ones are accepted, as Mosquitto and 3.1.1 (3.1.3-5) do.
        this.#refuse(ConnackReturnCode.IdentifierRejected, "MQTT 3.1 requires a client id");
        return;
      }
      if (!p.clean) {
        // MQTT-3.1.3-8: zero-length id with clean session 0 -> 0x02 and close.
        this.#refuse(
          ConnackReturnCode.IdentifierRejected,
          "zero-length client id requires clean session",
        );
        return;
      }
      clientId = this.broker.assignClientId();
    }
    this.info.clientId = clientId;
    this.info.username = this.conn.username ?? p.username;
    if (p.will && !this.broker.isValidTopicName(p.will.topic)) {
      throw new ProtocolError("invalid will topic", "MQTT-3.1.2-9", ReasonCode.TopicNameInvalid);
    }
    const auth = await this.broker.authenticator.authenticate({
      ...this.info,
      password: p.password,
    });
    if (this.isClosed) return;
    if (!auth.ok) {
      this.#refuse(auth.reasonCode, auth.reason ?? "authentication failed");
      return;
    }
    this.will = p.will;
    this.keepalive = p.keepalive;
    const sessionPresent = await this.broker.attach(this, p);
    if (this.isClosed) return;
    this.state = "connected";
    this.send(encode({ type: "connack", sessionPresent, reasonCode: 0 }, this.version));
    this.#armKeepalive();
    this.broker.log.info(
      `client ${clientId} connected from ${this.info.remoteAddress} via ${this.conn.transport}` +
        ` (v${level === 3 ? "3.1" : "3.1.1"}, clean=${p.clean}, keepalive=${p.keepalive}s,` +
        ` session present=${sessionPresent})`,
    );
    this.broker.resume(this);
    const backlog = this.#backlog ?? [];
    this.#backlog = null;
    try {
      for (const q of backlog) {
        if (this.state !== "connected") break;
        this.#dispatch(q);
      }
    } catch (err) {
      if (err instanceof ProtocolError) {
        this.broker.log.warn(`protocol error from ${this.#who()}: ${err.message}; closing`);
        this.close(`protocol error: ${err.message}`);
      } else throw err;
    }
  }

  #refuse(code: number, why: string): void {
    this.broker.log.info(
      `refused connection from ${this.info.remoteAddress}` +
        (this.info.clientId ? ` (client ${this.info.clientId})` : "") +
        `: ${why} (CONNACK 0x${code.toString(16).padStart(2, "0")})`,
    );
    this.#enqueue(
      encode({ type: "connack", sessionPresent: false, reasonCode: code }, this.version),
    );
    this.end(why);
  }

  #armKeepalive(): void {
    if (this.keepalive === 0) return; // MQTT-3.1.2-24 only applies to a non-zero keepalive.
    const limit = this.keepalive * 1500;
    const check = () => {
      if (this.state !== "connected") return;
      const idle = Date.now() - this.lastReceived;
      if (idle >= limit) {
        this.broker.log.info(`client ${this.info.clientId}: keepalive timeout (${idle} ms idle)`);
        this.close("keepalive timeout");
      } else {
        this.#keepaliveTimer = setTimeout(check, limit - idle);
      }
    };
    this.#keepaliveTimer = setTimeout(check, limit);
  }

  /** A method, not a property check, because `state` changes behind awaits. */
  get isClosed(): boolean {
    return this.state === "closed";
  }

  // ---------------------------------------------------------------- output

  /** Bytes waiting to be written (buffered plus the write in progress). */
  get buffered(): number {
    return this.#len + this.#writingBytes;
  }

  /** True while the client is not keeping up; QoS 0 is dropped and feeding stops. */
  get congested(): boolean {
    return this.buffered > this.broker.options.outboundBufferBytes;
  }

  /**
   * The gate segment new output must join, or null when it may go straight to the buffer. With
   * `durable`, output waits until everything the store was told so far is committed.
   */
  #gateFor(durable: boolean): GateSegment | null {
    if (durable) {
      const barrier = this.broker.commitBarrier();
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
    const seg = this.#gateFor(durable);
    if (seg) seg.append(bytes);
    else this.#enqueue(bytes);
  }

  /** PUBACK (0x40), PUBREC (0x50), PUBREL (0x62) or PUBCOMP (0x70) without allocating. */
  sendAck(first: number, packetId: number, durable = false): void {
    if (this.state === "closed") return;
    const seg = this.#gateFor(durable);
    // 5.0 sends Success without properties in this same 2-byte form (3.4.2.1).
    const buf = seg ? seg.room(4) : this.#room(4);
    const i = seg ? seg.len : this.#len;
    buf[i] = first;
    buf[i + 1] = 2;
    buf[i + 2] = packetId >> 8;
    buf[i + 3] = packetId & 0xff;
    if (seg) seg.len = i + 4;
    else {
      this.#len = i + 4;
      this.#queued();
    }
  }

  /** A PUBLISH from a shared template, its packet id and DUP patched in the output buffer. */
  sendPublish(t: PublishTemplate, packetId: number, dup: boolean, durable = false): void {
    if (this.state === "closed") return;
    const seg = this.#gateFor(durable);
    if (t.packetIdOffset < 0) {
      if (seg) seg.append(t.bytes);
      else this.#enqueue(t.bytes);
      return;
    }
    const n = t.bytes.byteLength;
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
    buf.set(t.bytes, at);
    buf[at + t.packetIdOffset] = packetId >> 8;
    buf[at + t.packetIdOffset + 1] = packetId & 0xff;
    if (dup) buf[at] |= 0x08;
    if (!seg) this.#queued();
  }

  /**
   * A PUBLISH of `msg` for this client alone, written straight into the output buffer: a
   * message with one subscriber (point-to-point, fan-in) then costs no shared template, which
   * would be one more buffer allocation and copy per message. Falls back to the template when
   * the output is gated or the client speaks 5.0.
   */
  sendMessage(
    msg: StoredMessage,
    qos: QoS,
    retain: boolean,
    packetId: number,
    durable = false,
  ): void {
    if (this.state === "closed") return;
    if (durable || this.version === 5 || this.#gate.length > 0) {
      this.sendPublish(publishTemplate(msg, this.version, qos, retain), packetId, false, durable);
      return;
    }
    const topicBytes = utf8Length(msg.topic);
    const n = publishSizeV4(topicBytes, msg.payload.byteLength, qos);
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
  }

  /** Queues bytes that must not leave before `barrier` resolves; later output waits too. */
  sendAfter(barrier: Promise<void>, bytes: Uint8Array): void {
    if (this.state === "closed") return;
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
      if (seg.len > 0) this.#enqueue(seg.buf.subarray(0, seg.len));
      if (this.#gate.length > 0) this.#releaseGate();
    }, (err) => {
      this.broker.log.error(
        `store commit failed (${err?.message ?? err}); closing ${this.#who()} without ` +
          `acknowledging its pending messages`,
      );
      this.close("store commit failed");
    });
  }

  /** The output buffer with room for `n` more bytes. */
  #room(n: number): Uint8Array {
    let buf = this.#buf;
    if (buf === null) {
      buf = this.#buf = new Uint8Array(n > this.#hint ? n : this.#hint);
    } else if (buf.byteLength - this.#len < n) {
      const next = new Uint8Array(Math.max(this.#len + n, buf.byteLength * 2));
      next.set(buf.subarray(0, this.#len));
      buf = this.#buf = next;
    }
    return buf;
  }

  #enqueue(bytes: Uint8Array): void {
    const n = bytes.byteLength;
    const buf = this.#room(n);
    buf.set(bytes, this.#len);
    this.#len += n;
    this.#queued();
  }

  #queued(): void {
    if (!this.#writing && !this.#flushScheduled) {
      this.#flushScheduled = true;
      if (Client.#toFlush.push(this) === 1) queueMicrotask(Client.#flushAll);
    }
    if (this.#congestedSince === 0 && this.congested) {
      this.#congestedSince = Date.now();
      this.broker.noteCongested(this);
    }
  }

  /**
   * Hands the buffered output to the transport. Synchronous while the transport accepts it (the
   * common case); only a full transport buffer makes it wait, and then for one promise.
   */
  /** Clients with output queued this turn: one microtask flushes them all. */
  static #toFlush: Client[] = [];

  static #flushAll(): void {
    const all = Client.#toFlush;
    Client.#toFlush = [];
    for (const c of all) c.#flush();
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#writing || this.state === "closed") return;
    while (this.#len > 0) {
      const n = this.#len;
      const out = this.#buf!.subarray(0, n);
      // The written buffer belongs to the transport from now on: start a new one.
      this.#hint = n < 256 ? 256 : n > 65536 ? 65536 : n;
      this.#buf = null;
      this.#len = 0;
      let wait: Promise<void> | undefined;
      try {
        wait = this.#io.write(out);
      } catch (err) {
        this.#writeFailed(err);
        return;
      }
      if (wait) {
        this.#writing = true;
        this.#writingBytes = n;
        wait.then(() => this.#written(), (err) => {
          this.#writing = false;
          this.#writeFailed(err);
        });
        return;
      }
    }
    if (this.#congestedSince !== 0 && !this.congested) {
      this.#congestedSince = 0;
      if (this.session && this.state === "connected") this.broker.pump(this.session);
    }
    if (this.#ending && this.#gate.length === 0) this.#finish();
  }

  /** The transport took a write it had made us wait for: room again. */
  #written(): void {
    this.#writing = false;
    this.#writingBytes = 0;
    // Let queued QoS 1/2 messages flow.
    if (this.session && this.state === "connected") this.broker.pump(this.session);
    this.#flush();
  }

  #writeFailed(err: unknown): void {
    if (!this.isClosed) this.close(`write failed: ${(err as Error)?.message ?? err}`);
  }

  /** ms since the client went over its outbound limit, 0 if it is not over it. */
  get congestedSince(): number {
    return this.#congestedSince;
  }

  // ---------------------------------------------------------------- closing

  /** Stops reading, lets queued output drain (bounded), then closes. */
  end(reason: string): void {
    if (this.#ending || this.state === "closed") return;
    this.#ending = true;
    this.closeReason = reason;
    // Nothing more is read from a connection on its way out.
    this.#io.pause();
    if (!this.#writing && this.#len === 0 && this.#gate.length === 0) {
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
   * Closes now. The will is published unless the client sent DISCONNECT (`publishWill` false
   * forces it off, e.g. for refused connections that never had a session).
   */
  close(reason: string, publishWill = true): void {
    if (this.state === "closed") return;
    const wasConnected = this.state === "connected";
    this.state = "closed";
    this.closeReason = reason;
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#keepaliveTimer);
    this.#buf = null;
    this.#len = 0;
    this.#gate = NO_GATE;
    try {
      this.conn.close();
    } catch {
      // already closed by the peer
    }
    this.broker.clientClosed(
      this,
      reason,
      wasConnected && publishWill && !this.#gracefulDisconnect,
    );
  }
}
