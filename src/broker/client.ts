/**
 * One network connection speaking MQTT, input side: reads bytes into the decoder, keeps the
 * connection's state and timers, and hands each packet to the broker's handlers (handlers/).
 * The output side (buffer, commit gate, graceful end) is its base class in output.ts.
 */
import { Decoder } from "../codec/decoder.ts";
import { encode } from "../codec/encoder.ts";
import { ProtocolError } from "../codec/errors.ts";
import type { ConnectPacket, Packet, Will } from "../codec/packets.ts";
import { ConnackReturnCode, ReasonCode } from "../codec/reason_codes.ts";
import { ackedCode, ackedId, ackedQos, type PublishAckTarget } from "./model.ts";
import type { BrokerOptions } from "./options.ts";
import type { FixedDelay, KeepaliveWheel, Timed } from "./client_timers.ts";
import { ClientOutput, type OutputHost } from "./output.ts";
import type { ByteConnection, RawSink } from "./ports/connection.ts";
import { PublishRate } from "./publish_rate.ts";
import type { Session } from "./session.ts";
import { streamRawIo } from "./stream_io.ts";

/** What a client needs from the broker: its settings and the packet handlers. */
export interface ClientHost extends OutputHost {
  readonly options: BrokerOptions;
  /** Handles CONNECT; the client reads nothing more until it settles. */
  connect(client: Client, p: ConnectPacket): Promise<void>;
  /** Handles any later packet, synchronously. */
  packet(client: Client, p: Packet): void;
  /** The connection is gone; the session is detached and the will is due if `publishWill`. */
  closed(client: Client, reason: string, publishWill: boolean): void;
  /** Connections waiting for their CONNECT (connect-timeout), with Client.connectExpired. */
  readonly awaitingConnect: FixedDelay<Client>;
  /** The same for connections to be refused: 2 s at most. */
  readonly awaitingRefusal: FixedDelay<Client>;
  /** Connected clients with a keep-alive, with Client.keepaliveDue. */
  readonly keepalive: KeepaliveWheel<Client>;
}

/** 3.1.1 CONNACK return codes as 5.0 reason codes (5.0 table 3.1 has no codes below 0x80). */
const V5_REFUSAL: Record<number, number> = {
  [ConnackReturnCode.UnacceptableProtocolVersion]: ReasonCode.UnsupportedProtocolVersion,
  [ConnackReturnCode.IdentifierRejected]: ReasonCode.ClientIdentifierNotValid,
  [ConnackReturnCode.ServerUnavailable]: ReasonCode.ServerUnavailable,
  [ConnackReturnCode.BadUsernameOrPassword]: ReasonCode.BadUserNameOrPassword,
  [ConnackReturnCode.NotAuthorized]: ReasonCode.NotAuthorized,
};

/**
 * Decoders not in use. A connection needs its own only while a packet is split across reads:
 * between packets it keeps nothing but its protocol level (`version`), and an idle connection
 * holds no decoder (120 bytes each, times tens of thousands of idle connections).
 */
const spareDecoders: Decoder[] = [];
const MAX_SPARE_DECODERS = 16;

/**
 * What few connections need, in an object of its own made on first use: as fields of every
 * Client they cost 8 bytes each per connection, idle or not.
 */
class ClientRare {
  refuse: number | null = null;
  publishRate: PublishRate | null = null;
  will: Will | undefined = undefined;
  /** Packets that came behind CONNECT while it was handled. */
  backlog: Packet[] | null = null;
  /** Set while an enhanced authentication waits for the client's next packet (nextPacket). */
  awaiting: ((p: Packet | null) => void) | null = null;
  gracefulDisconnect = false;
}

export class Client extends ClientOutput<ClientHost> implements RawSink, Timed, PublishAckTarget {
  readonly conn: ByteConnection;
  session: Session | null = null;
  keepalive = 0;
  /** When the connection was opened (ms since epoch), for the admin API. */
  readonly connectedAt = Date.now();
  /** When the last bytes arrived from the client (ms). Our own writes do not count. */
  lastReceived = Date.now();
  /** Set only while a packet is split across reads (see spareDecoders). */
  #decoder: Decoder | null = null;
  #rare: ClientRare | null = null;
  /** Timed: the connect deadline's or the keep-alive's (client_timers.ts). */
  timerSlot = 0;
  timerIndex = 0;

  constructor(host: ClientHost, conn: ByteConnection) {
    super(host, conn.raw ?? streamRawIo(conn), {
      clientId: "",
      // Declared now though set at CONNECT: a property added later would make V8 give the
      // object a second backing store (~40 bytes per connection).
      username: undefined,
      remoteAddress: conn.remoteAddress,
      transport: conn.transport,
      protocolVersion: 4,
    });
    this.conn = conn;
    this.inflightWindow = host.options.maxInflight;
    const rate = host.options.maxPublishRate;
    if (rate > 0) {
      this.#more().publishRate = new PublishRate(rate, host.options.maxPublishBurst, Date.now());
    }
  }

  #more(): ClientRare {
    return this.#rare ??= new ClientRare();
  }

  /** The will of this connection (set at CONNECT), if it has one. */
  get will(): Will | undefined {
    return this.#rare?.will;
  }

  set will(w: Will | undefined) {
    if (w !== undefined || this.#rare !== null) this.#more().will = w;
  }

  /** Set when the broker must refuse this connection once its CONNECT arrives. */
  get refuse(): number | null {
    return this.#rare === null ? null : this.#rare.refuse;
  }

  set refuse(code: number | null) {
    if (code !== null || this.#rare !== null) this.#more().refuse = code;
  }

  /**
   * PublishAckTarget: the PUBACK (QoS 1) or PUBREC (QoS 2) of a PUBLISH, `packed` by packAck with
   * its 5.0 reason code (0x10: no matching subscribers).
   */
  ackPublish(packed: number): void {
    const pid = ackedId(packed);
    if (ackedQos(packed) === 1) {
      this.v5?.acknowledged();
      this.sendAck(0x40, pid, true, ackedCode(packed));
    } else this.sendAck(0x50, pid, true, ackedCode(packed));
  }

  /** The inbound PUBLISH rate limit, when one is configured. */
  get publishRate(): PublishRate | null {
    return this.#rare === null ? null : this.#rare.publishRate;
  }

  /** Starts reading; the transport pushes chunks into onData until onEnd. Never throws. */
  run(): void {
    this.#connectDeadline().add(this);
    try {
      this.io.start(this);
    } catch (err) {
      this.close(`connection error: ${(err as Error)?.message ?? err}`);
    }
  }

  /** The connect timeout's queue this connection is in (until its CONNECT, or its close). */
  #connectDeadline(): FixedDelay<Client> {
    return this.refuse !== null ? this.host.awaitingRefusal : this.host.awaitingConnect;
  }

  /** The connect timeout of `c` passed (ClientHost.awaitingConnect). */
  static connectExpired(c: Client): void {
    if (c.state === "new") c.close("no CONNECT within connect timeout");
  }

  /** RawSink: one chunk from the transport, decoded and dispatched synchronously. */
  onData(chunk: Uint8Array): void {
    if (this.state === "closed" || this.ending) return;
    this.lastReceived = Date.now();
    this.host.stats.bytesIn += chunk.byteLength;
    let d = this.#decoder;
    if (d === null) {
      const maxPacketSize = this.host.options.maxPacketSize;
      d = spareDecoders.pop() ?? new Decoder({ maxPacketSize });
      d.maxPacketSize = maxPacketSize;
      // The level of the CONNECT decoded so far (the decoder switches to it at that CONNECT,
      // and the CONNECT handler sets `version` to it in the same turn).
      d.protocolVersion = this.version;
      this.#decoder = d;
    }
    try {
      d.push(chunk, Client.#packet, this);
    } catch (err) {
      // A failed decoder stays failed (it rethrows): it is never reused.
      this.#failed(err);
      return;
    }
    // Between packets: the decoder goes back for the next chunk of any connection. Taken out
    // of the spares while in use, so a push nested in this one gets another decoder.
    if (d.idle && this.#decoder === d) {
      this.#decoder = null;
      if (spareDecoders.length < MAX_SPARE_DECODERS) spareDecoders.push(d);
    }
  }

  /** RawSink: end of the byte stream, or a read error. */
  onEnd(error?: Error): void {
    if (this.state === "closed") return;
    if (error) this.close(`connection error: ${error.message}`);
    else if (!this.ending) this.close("connection closed by client");
  }

  #failed(err: unknown): void {
    if (err instanceof ProtocolError) {
      this.host.log.warn(`protocol error from ${this.who()}: ${err.message}; closing connection`);
      // MQTT-4.13.1-1: closed; a 5.0 client is told why first (4.13.2).
      this.close(`protocol error: ${err.message}`, true, err.reasonCode);
    } else if (this.state !== "closed") {
      this.close(`internal error: ${(err as Error)?.message ?? err}`);
      this.host.log.error(
        `error handling input from ${this.who()}: ${(err as Error)?.stack ?? err}`,
      );
    }
  }

  /** One function for all clients (called with `this` bound by the decoder), not one each. */
  static #packet(this: Client, p: Packet): void {
    this.#onPacket(p);
  }

  #onPacket(p: Packet): void {
    if (this.ending || this.state === "closed") return;
    this.host.stats.packetsIn++;
    if (this.state === "connecting") {
      const rare = this.#more();
      if (rare.awaiting !== null) rare.awaiting(p);
      else (rare.backlog ??= []).push(p);
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
      this.#onConnect(p);
      return;
    }
    this.host.packet(this, p);
  }

  /**
   * The first packet, a CONNECT. Apart from #onPacket: its closures would make V8 allocate a
   * context on every packet's call, not only on this one.
   */
  #onConnect(p: ConnectPacket): void {
    this.state = "connecting";
    this.host.stats.connectsReceived++;
    this.#connectDeadline().settle(this);
    const handled = this.host.connect(this, p);
    // Still waiting (for authentication, the store, the cluster): the packets already in this
    // chunk wait in the backlog, and no more are read until CONNACK, unless an enhanced
    // authentication waits for the client's next packet. A CONNECT answered at once (the
    // common case) pauses nothing: two calls into the runtime per connection saved.
    if (this.state === "connecting" && !this.#rare?.awaiting) this.io.pause();
    handled.then(() => this.#connectSettled(), (err) => {
      if (err instanceof ProtocolError) this.#failed(err);
      else {
        this.host.log.error(`CONNECT handling failed for ${this.who()}: ${err}`);
        this.close("internal error during CONNECT");
      }
      this.#connectSettled();
    });
  }

  /** CONNECT was handled: reading goes on if it was paused for it. */
  #connectSettled(): void {
    if (this.state !== "closed" && !this.ending) this.io.resume();
  }

  /**
   * While CONNECT is handled (an enhanced authentication exchange): the client's next packet,
   * from the backlog or read now, and reading stops again behind it. Null when the connection
   * closed meanwhile or nothing came within `timeoutMs` (the connection is then closed).
   */
  nextPacket(timeoutMs: number): Promise<Packet | null> {
    const queued = this.#rare?.backlog?.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.state !== "connecting" || this.ending) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.close("authentication timed out", false), timeoutMs);
      const rare = this.#more();
      rare.awaiting = (p) => {
        clearTimeout(timer);
        rare.awaiting = null;
        if (p !== null) this.io.pause();
        resolve(p);
      };
      this.io.resume();
    });
  }

  /**
   * Called by the CONNECT handler right after CONNACK: handles the packets that arrived behind
   * CONNECT, in order.
   */
  drainBacklog(): void {
    const backlog = this.#rare?.backlog ?? null;
    if (backlog === null) return;
    this.#rare!.backlog = null;
    try {
      for (const q of backlog) {
        if (this.state !== "connected") break;
        this.host.packet(this, q);
      }
    } catch (err) {
      if (err instanceof ProtocolError) {
        this.host.log.warn(`protocol error from ${this.who()}: ${err.message}; closing`);
        this.close(`protocol error: ${err.message}`, true, err.reasonCode);
      } else throw err;
    }
  }

  /**
   * Answers CONNECT with a refusal code and closes once it is written. A 3.1.1 return code
   * (below 0x80) is turned into its 5.0 reason code for a 5.0 client, which is also told why
   * (a Reason String, MQTT-3.2.2-19: only if it fits the client's Maximum Packet Size; nothing
   * when not even the bare CONNACK fits, MQTT-3.1.2-24). `log`
   * false when the caller already logged it (rate-limited).
   */
  refuseConnect(code: number, why: string, maxPacketSize = 0, log = true): void {
    if (this.version === 5 && code < 0x80) code = V5_REFUSAL[code] ?? ReasonCode.UnspecifiedError;
    if (log) {
      this.host.log.info(
        `refused connection from ${this.info.remoteAddress}` +
          (this.info.clientId ? ` (client ${this.info.clientId})` : "") +
          `: ${why} (CONNACK 0x${code.toString(16).padStart(2, "0")})`,
      );
    }
    let connack = encode(
      { type: "connack", sessionPresent: false, reasonCode: code },
      this.version,
    );
    if (this.version === 5) {
      const withReason = encode({
        type: "connack",
        sessionPresent: false,
        reasonCode: code,
        properties: { reasonString: why },
      }, 5);
      if (maxPacketSize === 0 || withReason.byteLength <= maxPacketSize) connack = withReason;
    }
    // MQTT-3.1.2-24: a client whose Maximum Packet Size is below even the bare CONNACK (5 bytes)
    // gets nothing; a DISCONNECT may not come before a CONNACK either (MQTT-3.14.0-1).
    if (this.version !== 5 || maxPacketSize === 0 || connack.byteLength <= maxPacketSize) {
      this.enqueue(connack);
    }
    this.end(why);
  }

  /** The DISCONNECT a 5.0 client is sent before the server closes, with a Reason String. */
  #disconnectPacket(code: number, why: string): Uint8Array {
    const plain = encode({ type: "disconnect", reasonCode: code }, 5);
    const withReason = encode({
      type: "disconnect",
      reasonCode: code,
      properties: { reasonString: why },
    }, 5);
    // MQTT-3.14.2-3: the Reason String only if it fits the client's Maximum Packet Size.
    return withReason.byteLength <= this.v5!.maxPacketSize ? withReason : plain;
  }

  /**
   * 5.0: queues DISCONNECT with `code`, then ends as end() does (the output drains first). A
   * 3.1/3.1.1 client is only ended.
   */
  endWith(code: number, reason: string): void {
    if (this.v5 !== null && this.state === "connected" && !this.ending) {
      this.send(this.#disconnectPacket(code, reason));
    }
    this.end(reason);
  }

  /** MQTT-3.1.2-24: no packet within 1.5 x keepalive closes the connection. */
  armKeepalive(): void {
    if (this.keepalive === 0) return; // The rule only applies to a non-zero keepalive.
    this.host.keepalive.add(this, this.lastReceived + this.keepalive * 1500);
  }

  /** The keep-alive deadline of `c` came (ClientHost.keepalive): closed, or checked again then. */
  static keepaliveDue(c: Client, now: number): number {
    if (c.state !== "connected" || c.keepalive === 0) return 0;
    const limit = c.keepalive * 1500;
    const idle = now - c.lastReceived;
    if (idle < limit) return c.lastReceived + limit;
    c.host.log.info(`client ${c.info.clientId}: keepalive timeout (${idle} ms idle)`);
    c.close("keepalive timeout", true, ReasonCode.KeepAliveTimeout);
    return 0;
  }

  /**
   * MQTT-3.14.4-3: after DISCONNECT (5.0: with reason code 0x00) the will is discarded and the
   * connection closed. Any other 5.0 reason code keeps the will, which is then published
   * (MQTT-3.1.2-8; 0x04 asks for exactly that).
   */
  disconnectGracefully(reasonCode = 0): void {
    if (reasonCode === 0) {
      this.#more().gracefulDisconnect = true;
      this.will = undefined;
      this.close("client sent DISCONNECT");
    } else {
      this.close(`client sent DISCONNECT 0x${reasonCode.toString(16).padStart(2, "0")}`);
    }
  }

  /**
   * Closes now. The will is published unless the client sent DISCONNECT (`publishWill` false
   * forces it off, e.g. for refused connections that never had a session). A connected 5.0
   * client is sent DISCONNECT with `reasonCode` (if given) before the socket closes; the session
   * is detached at once either way.
   */
  close(reason: string, publishWill = true, reasonCode?: number): void {
    if (this.state === "closed") return;
    const wasConnected = this.state === "connected";
    if (this.state === "new") this.#connectDeadline().settle(this);
    else this.host.keepalive.remove(this);
    this.state = "closed";
    this.closeReason = reason;
    this.#rare?.awaiting?.(null);
    if (reasonCode !== undefined && wasConnected && this.v5 !== null && !this.ending) {
      this.writeLast(this.#disconnectPacket(reasonCode, reason), () => this.#closeSocket());
    } else {
      this.discardOutput();
      this.#closeSocket();
    }
    const graceful = this.#rare?.gracefulDisconnect ?? false;
    this.host.closed(this, reason, wasConnected && publishWill && !graceful);
  }

  #closeSocket(): void {
    try {
      this.conn.close();
    } catch {
      // already closed by the peer
    }
  }
}
