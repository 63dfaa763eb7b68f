/**
 * A node:net / node:tls socket adapted to ByteConnection: a push-based raw path for the broker
 * core, and WHATWG streams (created only when a wrapper asks for them), with backpressure both
 * ways.
 *
 * TLS, and plain TCP behind a PROXY header, go through node:net rather than Deno.listen because
 * Deno's node:net is built on native handles that read only when data is ready: an idle
 * connection holds no pending read and no buffer. With Deno.Conn every idle connection keeps a
 * read op, its buffer and promise alive, about 2.5 KiB more per connection, and each message
 * pays an op round trip. Plain TCP without a header skips the Socket too (tcp_handle.ts).
 */
import type { Socket } from "node:net";
import type { ByteConnection, RawIo, RawSink } from "../broker/ports/connection.ts";

/** Bytes read ahead of a stream consumer before the socket is paused. */
const READ_HIGH_WATER = 64 * 1024;

/*
 * The raw path's listeners are shared by all sockets (an emitter calls them with `this` set to
 * itself) and find their sink on the socket: three closures per connection would cost ~200
 * bytes each time, times tens of thousands of idle connections.
 */
const SINK = Symbol("mqttwk.sink");
const ERROR = Symbol("mqttwk.error");

interface SinkSocket extends Socket {
  [SINK]: RawSink;
  [ERROR]?: Error;
}

function onSinkData(this: SinkSocket, chunk: Uint8Array): void {
  this[SINK].onData(chunk);
}

// "error" and "end" are always followed by "close" (these sockets are not half-open), so the
// end is reported once, from "close", with the error if there was one.
function onSinkError(this: SinkSocket, err: Error): void {
  this[ERROR] ??= err;
}

function onSinkClose(this: SinkSocket): void {
  this[SINK].onEnd(this[ERROR]);
}

class NodeSocketConnection implements ByteConnection, RawIo {
  readonly #socket: Socket;
  readonly remoteAddress: string;
  readonly transport: string;
  readonly peerCertificateCN?: string;
  readonly username?: string;
  #closed = false;
  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;

  constructor(socket: Socket, remoteAddress: string, transport: string, identity: Identity) {
    this.#socket = socket;
    this.remoteAddress = remoteAddress;
    this.transport = transport;
    if (identity.peerCertificateCN !== undefined) {
      this.peerCertificateCN = identity.peerCertificateCN;
    }
    if (identity.username !== undefined) this.username = identity.username;
  }

  get raw(): RawIo {
    return this;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.destroy();
  }

  /**
   * Closes once everything written is out: a written chunk may still sit in the socket's (or
   * the TLS layer's) buffer, which close() would drop.
   */
  closeAfterWrites(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.destroySoon();
  }

  // ------------------------------------------------------------------ raw path

  start(sink: RawSink): void {
    const s = this.#socket as SinkSocket;
    s[SINK] = sink;
    s.on("data", onSinkData);
    s.on("error", onSinkError);
    s.on("close", onSinkClose);
    // A socket handed on paused (after a PROXY header) does not flow by itself.
    s.resume();
  }

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    if (!this.#closed) this.#socket.resume();
  }

  write(bytes: Uint8Array): Promise<void> | undefined {
    const s = this.#socket;
    if (this.#closed || s.destroyed) return Promise.reject(new Error("socket is closed"));
    if (s.write(bytes)) return undefined;
    return drained(s);
  }

  // ------------------------------------------------------------------ streams

  get readable(): ReadableStream<Uint8Array> {
    return this.#readable ??= this.#makeReadable();
  }

  get writable(): WritableStream<Uint8Array> {
    return this.#writable ??= new WritableStream<Uint8Array>({
      write: (chunk) => this.write(chunk),
      close: () => {
        this.#socket.end();
      },
      abort: () => this.close(),
    });
  }

  #makeReadable(): ReadableStream<Uint8Array> {
    const socket = this.#socket;
    return new ReadableStream<Uint8Array>({
      start(ctrl) {
        let ended = false;
        const end = (err?: Error) => {
          if (ended) return;
          ended = true;
          try {
            if (err) ctrl.error(err);
            else ctrl.close();
          } catch {
            // already closed or cancelled
          }
        };
        socket.on("data", (chunk: Uint8Array) => {
          if (ended) return;
          // node hands out a fresh buffer per read, so the decoder may keep views into it.
          ctrl.enqueue(chunk);
          if ((ctrl.desiredSize ?? 1) <= 0) socket.pause();
        });
        socket.on("end", () => end());
        socket.on("close", () => end());
        socket.on("error", (err: Error) => end(err));
        socket.resume();
      },
      pull: () => {
        if (!this.#closed && socket.isPaused()) socket.resume();
      },
      cancel: () => this.close(),
    }, new ByteLengthQueuingStrategy({ highWaterMark: READ_HIGH_WATER }));
  }
}

/** Resolves on "drain"; rejects if the socket closes or fails first. */
function drained(s: Socket): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      s.off("drain", onDrain);
      s.off("close", onClose);
      s.off("error", onError);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error("socket closed while writing"));
    const onError = (err: Error) => done(err);
    s.on("drain", onDrain);
    s.on("close", onClose);
    s.on("error", onError);
  });
}

/** Who the TLS layer says the client is. */
export interface Identity {
  /** CN of the verified client certificate. */
  peerCertificateCN?: string;
  /** The MQTT username the transport established (the CN, when configured so). */
  username?: string;
}

/** Adapts an accepted node:net or node:tls socket. */
export function fromNodeSocket(
  socket: Socket,
  remoteAddress: string,
  transport: string,
  identity: Identity = {},
): ByteConnection & { readonly raw: RawIo; closeAfterWrites(): void } {
  return new NodeSocketConnection(socket, remoteAddress, transport, identity);
}
