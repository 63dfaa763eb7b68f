/**
 * A WebSocket server on a connection's own byte path: the opening handshake and RFC 6455
 * framing run on the raw path of the socket the listener accepted (native TCP handle, or
 * node:tls socket), so TLS and PROXY protocol need no second socket, no loopback hop and no
 * lookup of the real client. The MQTT bytes inside binary frames go to the core as views into
 * the chunks read (unmasked in place).
 */
import type { Logger } from "../log.ts";
import type { ByteConnection, RawIo, RawSink } from "../broker/ports/connection.ts";
import { rawReadable, rawWritable } from "./streams.ts";
import { joinHostPort } from "./proxy_protocol.ts";
import {
  answerUpgrade,
  errorResponse,
  type HttpError,
  RequestHeadParser,
  type UpgradePolicy,
} from "./ws_handshake.ts";
import {
  CloseCode,
  closePayload,
  encodeFrame,
  FrameDecoder,
  frameHeader,
  Opcode,
} from "./ws_frames.ts";
import { forwardedClient, hostOnly, portOnly, type Trusted } from "./websocket.ts";

/** What a WebSocket listener serves; shared by all its connections. */
export interface WsServerOptions extends UpgradePolicy {
  /** "ws" or "wss", for logs and the core. */
  transport: string;
  /** Largest payload a client frame may announce (else close 1009). */
  maxFrameSize: number;
  /** Milliseconds the client has for its upgrade request. */
  handshakeTimeoutMs: number;
  /** Peers whose X-Forwarded-For / X-Real-IP name the client. */
  trustedProxies: readonly Trusted[];
  log: Logger;
}

/** Milliseconds the broker waits for the client's close frame after sending its own. */
const CLOSE_WAIT_MS = 2000;

/** Payloads up to this size are copied behind their header: one write instead of two. */
const COPY_LIMIT = 16 * 1024;

/**
 * Serves the WebSocket protocol on `conn`'s raw path and hands the upgraded connection to
 * `onConnection`; a request that is not a valid upgrade gets an HTTP error and is closed.
 * `conn` must be fresh (nothing read yet).
 */
export function serveWebSocket(
  conn: ByteConnection & { readonly raw: RawIo },
  opts: WsServerOptions,
  onConnection: (conn: ByteConnection) => void,
): void {
  new WsConnection(conn, opts, onConnection);
}

/** A connection whose writes may still be buffered after write() returned (node sockets). */
interface Flushable {
  closeAfterWrites(): void;
}

type State = "handshake" | "open" | "closing" | "closed";

/** One object is the sink of the socket, the decoder's handler and the core's connection. */
class WsConnection implements ByteConnection, RawIo, RawSink {
  readonly #under: ByteConnection;
  readonly #io: RawIo;
  readonly #opts: WsServerOptions;
  #onConnection: ((conn: ByteConnection) => void) | null;
  remoteAddress: string;
  readonly peerCertificateCN?: string;
  readonly username?: string;
  #state: State = "handshake";
  #head: RequestHeadParser | null = new RequestHeadParser();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #decoder: FrameDecoder | null = null;
  #sink: RawSink | null = null;
  /** Chunks read after the handshake, before the core started reading. */
  #pending: Uint8Array[] | null = null;
  #paused = false;
  #ended = false;
  #endError: Error | undefined;
  #endReported = false;
  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;

  constructor(
    conn: ByteConnection & { readonly raw: RawIo },
    opts: WsServerOptions,
    onConnection: (conn: ByteConnection) => void,
  ) {
    this.#under = conn;
    this.#io = conn.raw;
    this.#opts = opts;
    this.#onConnection = onConnection;
    this.remoteAddress = conn.remoteAddress;
    if (conn.peerCertificateCN !== undefined) this.peerCertificateCN = conn.peerCertificateCN;
    if (conn.username !== undefined) this.username = conn.username;
    this.#timer = setTimeout(() => {
      this.#opts.log.debug(
        `${opts.transport}: closing connection from ${this.remoteAddress}: no WebSocket ` +
          `upgrade within ${opts.handshakeTimeoutMs} ms`,
      );
      this.#refuse({ status: 408, message: "Request timeout" });
    }, opts.handshakeTimeoutMs);
    this.#io.start(this);
  }

  get transport(): string {
    return this.#opts.transport;
  }

  get raw(): RawIo {
    return this;
  }

  // ------------------------------------------------------------------ from the socket

  onData(chunk: Uint8Array): void {
    switch (this.#state) {
      case "handshake":
        return this.#handshake(chunk);
      case "open":
      case "closing":
        if (this.#sink) this.#decoder!.push(chunk);
        else this.#pending!.push(chunk);
        return;
      case "closed":
        return;
    }
  }

  onEnd(error?: Error): void {
    const wasOpen = this.#state === "open" || this.#state === "closing";
    this.#state = "closed";
    clearTimeout(this.#timer);
    this.#head = null;
    if (wasOpen) this.#end(error);
  }

  #handshake(chunk: Uint8Array): void {
    const r = this.#head!.feed(chunk);
    if ("error" in r) return this.#refuse(r.error);
    if (!r.done) return;
    this.#head = null;
    const opts = this.#opts;
    const up = answerUpgrade(r.head, opts);
    if (!up.ok) {
      opts.log.debug(
        `${opts.transport}: refusing request from ${this.remoteAddress}: ` +
          `${up.error.status} ${up.error.message}`,
      );
      return this.#refuse(up.error);
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (opts.trustedProxies.length > 0) {
      const ip = forwardedClient(r.head.headers, hostOnly(this.remoteAddress), opts.trustedProxies);
      if (ip) this.remoteAddress = joinHostPort(ip, portOnly(this.remoteAddress));
    }
    // Until the core starts reading, frames wait (raw) in #pending and the socket is paused.
    this.#io.pause();
    this.#pending = r.rest.length > 0 ? [r.rest] : [];
    this.#decoder = new FrameDecoder(opts.maxFrameSize, this);
    this.#state = "open";
    this.#io.write(up.response)?.catch(() => {});
    const hand = this.#onConnection!;
    this.#onConnection = null;
    hand(this);
  }

  /** Answers with an HTTP error and closes once it is out. */
  #refuse(e: HttpError): void {
    clearTimeout(this.#timer);
    this.#head = null;
    this.#state = "closed";
    this.#io.pause();
    this.#afterWrite(this.#io.write(errorResponse(e)));
  }

  /** Closes the socket once `written` settles (at once when it is already out). */
  #afterWrite(written: Promise<void> | undefined): void {
    const under = this.#under as Partial<Flushable>;
    if (under.closeAfterWrites) under.closeAfterWrites();
    else if (!written) this.#under.close();
    else written.then(() => this.#under.close(), () => this.#under.close());
  }

  // ------------------------------------------------------------------ from the decoder

  onBinary(piece: Uint8Array): void {
    if (this.#state === "open") this.#sink!.onData(piece);
  }

  onText(): void {
    this.#opts.log.warn(
      `websocket client ${this.remoteAddress} sent a text frame; closing (MQTT needs binary)`,
    );
    this.#closeWith(CloseCode.UnsupportedData, "MQTT over WebSocket uses binary frames");
  }

  onPing(payload: Uint8Array): void {
    if (this.#state === "open") this.#io.write(encodeFrame(Opcode.Pong, payload))?.catch(() => {});
  }

  onClose(code: number | undefined): void {
    if (this.#state === "open") {
      // Section 5.5.1: answer with a close frame, echoing the status code.
      this.#state = "closing";
      this.#afterWrite(this.#io.write(encodeFrame(Opcode.Close, closePayload(code))));
      this.#end();
    } else this.#under.close();
  }

  onError(code: number, why: string): void {
    this.#opts.log.info(
      `${this.transport} client ${this.remoteAddress} broke the WebSocket protocol (${why}); ` +
        `closing with ${code}`,
    );
    if (this.#state === "closed") return;
    // Section 7.1.7: the framing can no longer be trusted, so no closing handshake: the close
    // frame goes out, then the socket closes.
    const wasOpen = this.#state === "open";
    this.#state = "closing";
    clearTimeout(this.#timer);
    this.#afterWrite(this.#io.write(encodeFrame(Opcode.Close, closePayload(code, why))));
    if (wasOpen) this.#end(new Error(`websocket protocol error: ${why}`));
  }

  /**
   * Starts the closing handshake (section 7.1.2): the client answers with its close frame, then
   * the socket closes; one that does not answer is cut off after CLOSE_WAIT_MS.
   */
  #closeWith(code: number, reason: string): void {
    if (this.#state !== "open") return;
    this.#state = "closing";
    this.#io.write(encodeFrame(Opcode.Close, closePayload(code, reason)))?.catch(() => {});
    // The close frame is only read while reading, whatever the core asked.
    this.#io.resume();
    this.#timer = setTimeout(() => this.#under.close(), CLOSE_WAIT_MS);
    Deno.unrefTimer(this.#timer);
    if (code !== CloseCode.Normal) this.#end(new Error(`websocket closed with ${code}: ${reason}`));
    else this.#end();
  }

  /** Reports the end to the core once, after the chunks it has not read yet. */
  #end(error?: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#endError = error;
    this.#reportEnd();
  }

  #reportEnd(): void {
    if (!this.#ended || this.#endReported || !this.#sink || this.#pending !== null) return;
    this.#endReported = true;
    this.#sink.onEnd(this.#endError);
  }

  // ------------------------------------------------------------------ to the core

  start(sink: RawSink): void {
    if (this.#sink) throw new Error("connection already started");
    this.#sink = sink;
    // Not from inside start(): the sink expects its chunks from the transport, as with a read.
    queueMicrotask(() => {
      const pending = this.#pending ?? [];
      this.#pending = null;
      for (const chunk of pending) {
        if (this.#state === "closed") break;
        this.#decoder!.push(chunk);
      }
      if (!this.#paused && this.#state !== "closed") this.#io.resume();
      this.#reportEnd();
    });
  }

  pause(): void {
    this.#paused = true;
    if (this.#state === "open") this.#io.pause();
  }

  resume(): void {
    this.#paused = false;
    if (this.#state === "open" && this.#pending === null) this.#io.resume();
  }

  write(bytes: Uint8Array): Promise<void> | undefined {
    if (this.#state !== "open") return Promise.reject(new Error("websocket is not open"));
    if (bytes.length <= COPY_LIMIT) return this.#io.write(encodeFrame(Opcode.Binary, bytes));
    // Large payloads go out as they are, behind their own header.
    const head = this.#io.write(frameHeader(Opcode.Binary, bytes.length));
    head?.catch(() => {});
    return this.#io.write(bytes) ?? head;
  }

  close(): void {
    if (this.#state === "open") this.#closeWith(CloseCode.Normal, "");
    else if (this.#state !== "closing") this.#under.close();
  }

  // ------------------------------------------------------------------ streams, for wrappers

  get readable(): ReadableStream<Uint8Array> {
    return this.#readable ??= rawReadable(this, () => this.close());
  }

  get writable(): WritableStream<Uint8Array> {
    return this.#writable ??= rawWritable(this, () => this.close());
  }
}
