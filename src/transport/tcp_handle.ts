/**
 * Plain TCP on the runtime's native TCP handles: the layer that node:net's Socket is built on,
 * used here without the Socket.
 *
 * A node:net Socket is a Duplex stream with its own readable and writable state, event emitter
 * and buffers. With 19,000 idle connections, bare servers used 4.3 KiB per Socket against 2.3 KiB
 * per handle, and the broker went from 4.7 to 3.7 KiB per connection. The broker needs none of
 * the Socket: it coalesces its own output, parses chunks as they come and only pauses reading.
 *
 * The handles are reached through `process.binding("tcp_wrap" / "stream_wrap")`, Node's
 * internal interface, which Deno mirrors. Everything used is checked once at start-up; if the
 * runtime does not offer it, plain TCP falls back to node:net Sockets (node_socket.ts) and the
 * log says so. The Deno version is pinned, and the e2e suite runs every TCP test over this path.
 */
import net from "node:net";
import process from "node:process";
import { getSystemErrorName } from "node:util";
import type { Logger } from "../log.ts";
import type { ByteConnection, RawIo, RawSink } from "../broker/ports/connection.ts";
import { rawReadable, rawWritable } from "./streams.ts";
import { joinHostPort, ProxyHeaderParser } from "./proxy_protocol.ts";
import { bindFront, type Front, type Guard } from "./listening.ts";

/** A native TCP handle (Node's TCPWrap): every call returns 0 or a negative errno. */
interface TcpHandle {
  readStart(): number;
  readStop(): number;
  writeBuffer(req: WriteReq, data: Uint8Array): number;
  writev(req: WriteReq, chunks: Uint8Array[], allBuffers: boolean): number;
  getpeername(out: { address?: string; port?: number }): number;
  setNoDelay(on: boolean): number;
  close(cb?: () => void): void;
}

interface ServerHandle {
  onconnection: ((status: number) => void) | null;
  accept(client: TcpHandle): number;
  setNoDelay?(on: boolean): number;
}

interface WriteReq {
  handle: TcpHandle;
  oncomplete: (this: WriteReq, status: number) => void;
  /**
   * The bytes being written. The runtime keeps only a pointer to them for the part the socket
   * did not take at once, so the request must hold them alive until it completes: a collected
   * buffer made the rest fail with EFAULT (or go out as whatever memory took its place).
   */
  buffer?: Uint8Array | Uint8Array[];
  resolve?: () => void;
  reject?: (err: Error) => void;
}

interface Native {
  Tcp: new (type: number) => TcpHandle;
  socketType: number;
  WriteWrap: new () => WriteReq;
  /** Out-parameters of the last read and write, written by the runtime. */
  state: { [i: number]: number };
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
  kLastWriteWasAsync: number;
}

const UV_EOF = -4095;

let native: Native | null | undefined;

/** The runtime's native handle interface, or null when it lacks any part the broker uses. */
export function nativeTcp(): Native | null {
  if (native !== undefined) return native;
  native = null;
  try {
    // deno-lint-ignore no-explicit-any
    const binding = (process as any).binding as (name: string) => any;
    const tcp = binding("tcp_wrap");
    const stream = binding("stream_wrap");
    const proto = tcp?.TCP?.prototype;
    const methods = [
      "readStart",
      "readStop",
      "writeBuffer",
      "writev",
      "getpeername",
      "setNoDelay",
      "close",
    ];
    const numbers = ["kReadBytesOrError", "kArrayBufferOffset", "kLastWriteWasAsync"];
    if (
      proto && methods.every((m) => typeof proto[m] === "function") &&
      typeof tcp.constants?.SOCKET === "number" && typeof stream?.WriteWrap === "function" &&
      stream.streamBaseState && numbers.every((k) => typeof stream[k] === "number")
    ) {
      native = {
        Tcp: tcp.TCP,
        socketType: tcp.constants.SOCKET,
        WriteWrap: stream.WriteWrap,
        state: stream.streamBaseState,
        kReadBytesOrError: stream.kReadBytesOrError,
        kArrayBufferOffset: stream.kArrayBufferOffset,
        kLastWriteWasAsync: stream.kLastWriteWasAsync,
      };
    }
  } catch {
    // no process.binding, or not these modules: the caller falls back to Sockets
  }
  return native;
}

function errnoError(code: number, op: string): Error {
  let name: string;
  try {
    name = getSystemErrorName(code);
  } catch {
    name = `error ${code}`;
  }
  const err = new Error(`${op} ${name}`) as Error & { code: string };
  err.code = name;
  return err;
}

function onWriteComplete(this: WriteReq, status: number): void {
  this.buffer = undefined;
  if (status < 0) this.reject?.(errnoError(status, "write"));
  else this.resolve?.();
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The listener a handle came from, shared by all its connections (no field each). */
interface Origin {
  name: string;
  guard: Guard | undefined;
}

// NativeConnection#flags
const READING = 1;
/** The sink asked for no more chunks for now. */
const PAUSED = 2;
const CLOSED = 4;
const ENDED = 8;
/** Counted against the socket budget: closing gives it back. */
const COUNTED = 16;

/** A connection accepted as a bare handle: the handle itself, with the broker's side added. */
export interface NativeConnection extends ByteConnection, RawIo {
  remoteAddress: string;
  readonly raw: RawIo;
  /** The socket counts against the listener's budget from now on (closing gives it back). */
  counted(): void;
  /** See the class. */
  expectProxyHeader(timeoutMs: number, done: (failure: string | null) => void): void;
}

/**
 * The connection class of one listener: a subclass of the runtime's handle class, so that a
 * connection is one object. A separate object pointing at its handle, and the handle pointing
 * back (a property added to it, which V8 stores out of the object), cost ~170 bytes more per
 * idle connection. The read callback is found on the prototype (the runtime looks `onread` up
 * on the handle), so no handle carries a function of its own either.
 */
function connectionClass(
  n: Native,
  origin: Origin,
): new (type: number) => NativeConnection & TcpHandle {
  return class HandleConnection extends n.Tcp implements NativeConnection {
    /** The peer, or the client the PROXY header names. */
    remoteAddress = "";
    #sink: RawSink | null = null;
    /** Bytes that followed a PROXY header in its chunk (or came before start), delivered first. */
    #pending: Uint8Array | null = null;
    #flags = 0;
    /** WHATWG streams, built only for wrappers that ask. */
    #streams: {
      readable?: ReadableStream<Uint8Array>;
      writable?: WritableStream<Uint8Array>;
    } | null = null;

    get transport(): string {
      return "tcp";
    }

    counted(): void {
      this.#flags |= COUNTED;
    }

    get raw(): RawIo {
      return this;
    }

    start(sink: RawSink): void {
      if (this.#sink) throw new Error("connection already started");
      this.#sink = sink;
      if (this.#flags & CLOSED) {
        this.#end();
        return;
      }
      this.#flags &= ~PAUSED;
      const rest = this.#pending;
      if (rest === null) {
        this.#startReading();
        return;
      }
      this.#pending = null;
      // Not from inside start(): the sink expects its chunks from the transport, as with any
      // read. It may pause on them (a CONNECT waiting for authentication), so reading starts
      // after.
      queueMicrotask(() => {
        if (this.#flags & CLOSED) return;
        sink.onData(rest);
        this.#startReading();
      });
    }

    /**
     * Reads a PROXY protocol header before the connection is handed on; `done` gets null once
     * it is in (the peer's address replaced, reading paused), or why the connection must be
     * closed.
     */
    expectProxyHeader(timeoutMs: number, done: (failure: string | null) => void): void {
      const parser = new ProxyHeaderParser();
      let settled = false;
      const finish = (failure: string | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (failure === null) {
          this.pause();
          this.#sink = null;
        }
        done(failure);
      };
      const timer = setTimeout(
        () => finish(`no PROXY protocol header within ${timeoutMs} ms`),
        timeoutMs,
      );
      this.start({
        onData: (chunk) => {
          if (settled) return;
          const r = parser.feed(chunk);
          if (typeof r === "string") {
            finish(r);
            return;
          }
          if (!r.done) return;
          if (r.header.source) this.remoteAddress = r.header.source;
          if (r.rest.length > 0) this.#pending = r.rest;
          finish(null);
        },
        onEnd: () => finish("connection closed before the PROXY protocol header"),
      });
    }

    /** The runtime's read callback (`this` is the handle): one read's outcome. */
    onread(buf: ArrayBuffer): void {
      if (this.#flags & CLOSED) return;
      const nread = n.state[n.kReadBytesOrError];
      if (nread > 0) {
        // The runtime hands out a fresh buffer per read, so views into it stay valid.
        const chunk = new Uint8Array(buf, n.state[n.kArrayBufferOffset], nread);
        if (this.#sink) this.#sink.onData(chunk);
        else this.#pending = this.#pending ? concat(this.#pending, chunk) : chunk;
      } else if (nread < 0) {
        // End of stream or a read error: this connection is over either way (never half-open).
        this.#end(nread === UV_EOF ? undefined : errnoError(nread, "read"));
        this.close();
      }
    }

    pause(): void {
      this.#flags |= PAUSED;
      if ((this.#flags & (READING | CLOSED)) !== READING) return;
      this.#flags &= ~READING;
      this.readStop();
    }

    resume(): void {
      this.#flags &= ~PAUSED;
      this.#startReading();
    }

    #startReading(): void {
      if (this.#flags & (READING | PAUSED | CLOSED) || !this.#sink) return;
      this.#flags |= READING;
      const err = this.readStart();
      if (err < 0) {
        this.#end(errnoError(err, "read"));
        this.close();
      }
    }

    write(bytes: Uint8Array): Promise<void> | undefined {
      return this.#write(bytes);
    }

    /** A write that returned undefined was taken by the socket whole (see #write). */
    get returnsBytes(): boolean {
      return true;
    }

    /** Several buffers in one system call (the native handle's writev). */
    writeMany(chunks: Uint8Array[]): Promise<void> | undefined {
      return this.#write(chunks);
    }

    #write(data: Uint8Array | Uint8Array[]): Promise<void> | undefined {
      if (this.#flags & CLOSED) return Promise.reject(new Error("socket is closed"));
      const req = new n.WriteWrap();
      req.handle = this;
      req.oncomplete = onWriteComplete;
      const err = data instanceof Uint8Array
        ? this.writeBuffer(req, data)
        : this.writev(req, data, true);
      if (err < 0) return Promise.reject(errnoError(err, "write"));
      if (!n.state[n.kLastWriteWasAsync]) return undefined;
      // The socket buffer is full: the rest goes out from the event loop, which calls
      // oncomplete.
      req.buffer = data;
      return new Promise<void>((resolve, reject) => {
        req.resolve = resolve;
        req.reject = reject;
      });
    }

    /** ByteConnection.close: idempotent; the native close is the handle's own. */
    override close(): void {
      if (this.#flags & CLOSED) return;
      if (this.#flags & COUNTED) origin.guard?.budget.release(origin.name);
      this.#flags = (this.#flags | CLOSED) & ~READING;
      // Pending writes fail with ECANCELED, which rejects their promises.
      super.close(() => this.#end());
    }

    /** Reports the end to the sink, once. */
    #end(err?: Error): void {
      if (this.#flags & ENDED || !this.#sink) return;
      this.#flags |= ENDED;
      this.#sink.onEnd(err);
    }

    // ---------------------------------------------------------------- streams, for wrappers

    get readable(): ReadableStream<Uint8Array> {
      const s = this.#streams ??= {};
      return s.readable ??= rawReadable(this, () => this.close());
    }

    get writable(): WritableStream<Uint8Array> {
      const s = this.#streams ??= {};
      return s.writable ??= rawWritable(this, () => this.close());
    }
  };
}

/**
 * Listens with a node:net server (address parsing, bind errors, close) but takes its accepted
 * connections as bare handles: the server's own Socket factory is replaced once it is bound.
 */
export function listenHandles(
  n: Native,
  opts: {
    hostname: string;
    port: number;
    name: string;
    /** Seconds to wait for a PROXY protocol header; undefined = none expected. */
    proxyTimeout?: number;
    /** The process-wide socket budget and descriptor watch; absent: no limit (tests). */
    guard?: Guard;
  },
  onConnection: (conn: ByteConnection & { readonly raw: RawIo }) => void,
  log: Logger,
): Front {
  const server = net.createServer();
  let refusedAt = 0;
  let refused = 0;
  return bindFront(server, opts, log, {
    // Runs before the event loop can accept anything: "listening" comes on the next tick.
    onBound() {
      const handle = (server as unknown as { _handle?: ServerHandle })._handle;
      if (typeof handle?.accept !== "function") {
        return new Error(`${opts.name}: the runtime's node:net server exposes no native handle`);
      }
      const Connection = connectionClass(n, { name: opts.name, guard: opts.guard });
      // Linux gives accepted sockets the listening socket's TCP_NODELAY: set once here, it
      // spares a system call per connection. Elsewhere each connection sets it.
      const inherited = Deno.build.os === "linux" && handle.setNoDelay?.(true) === 0;
      handle.onconnection = (status) => {
        if (status < 0) {
          opts.guard?.alert();
          // Out of file descriptors, typically: one line per second at most.
          refused++;
          const now = Date.now();
          if (now - refusedAt >= 1000) {
            log.error(
              `${opts.name}: cannot accept: ${errnoError(status, "accept").message}` +
                ` (${refused} so far)`,
            );
            refusedAt = now;
          }
          return;
        }
        let h: (NativeConnection & TcpHandle) | undefined;
        try {
          h = new Connection(n.socketType);
          const err = handle.accept(h);
          if (err !== 0) {
            opts.guard?.alert();
            log.error(`${opts.name}: cannot accept: ${errnoError(err, "accept").message}`);
            return;
          }
          if (opts.guard && !opts.guard.budget.take(opts.name)) {
            h.close();
            opts.guard.alert();
            return;
          }
          h.counted();
          if (!inherited) h.setNoDelay(true);
          const a: { address?: string; port?: number } = {};
          h.getpeername(a);
          const peer = joinHostPort(a.address ?? "?", a.port ?? 0);
          h.remoteAddress = peer;
          if (opts.proxyTimeout === undefined) {
            onConnection(h);
            return;
          }
          const c = h;
          c.expectProxyHeader(opts.proxyTimeout * 1000, (failure) => {
            if (failure === null) onConnection(c);
            else {
              log.warn(`${opts.name}: closing connection from ${peer}: ${failure}`);
              c.close();
            }
          });
        } catch (err) {
          // Nothing may escape the accept path: it would end the process.
          log.error(`${opts.name}: error accepting a connection: ${(err as Error).message}`);
          // Gives the budget back if it was taken.
          h?.close();
        }
      };
    },
  });
}
