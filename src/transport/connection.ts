/**
 * The seam between transports (TCP, TLS, WebSocket, in-memory test pipes) and the broker core:
 * a pair of byte streams plus the peer's address. Every transport adapter turns its native
 * connection into this shape; the core never sees a Deno API.
 *
 * Chunks pushed into `readable` must not be reused or mutated by the transport afterwards: the
 * decoder hands out payloads as views into them.
 */
export interface ByteConnection {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  /** "ip:port" of the real client (after PROXY protocol, if enabled). */
  readonly remoteAddress: string;
  /** "tcp" | "tls" | "ws" | "wss" | "memory" ... for logs and metrics. */
  readonly transport: string;
  /**
   * Common name of the client certificate the TLS layer verified (tls, wss with
   * ssl-client-auth); undefined when none was presented or the transport has no TLS.
   */
  readonly peerCertificateCN?: string;
  /**
   * Optional stream-free path for sockets. A pending WHATWG stream read costs a 64 KiB buffer
   * plus ~5 KiB of stream objects per connection; `raw` pushes each chunk straight into the core
   * instead, which is what makes tens of thousands of idle connections cheap. When present the
   * core uses it and never touches `readable`/`writable`. A wrapper that rewrites the byte
   * stream (PROXY header, CONNECT rewrite) must drop it.
   */
  readonly raw?: RawIo;
  /** Hard close of the underlying connection; idempotent. */
  close(): void;
}

/** Where a RawIo delivers what it reads. */
export interface RawSink {
  /** A chunk the transport never touches again (the decoder keeps views into it). */
  onData(chunk: Uint8Array): void;
  /** Called once: end of stream (no argument) or a read error. */
  onEnd(error?: Error): void;
}

export interface RawIo {
  /** Starts delivering chunks to `sink`, in order, then exactly one `onEnd`. */
  start(sink: RawSink): void;
  /** Stops delivery until `resume` (a chunk already read may still arrive). */
  pause(): void;
  resume(): void;
  /**
   * Hands `bytes` to the transport, which owns them from then on. Returns a promise only when
   * the writer should wait (the transport's buffer is full); it rejects if the connection failed.
   */
  write(bytes: Uint8Array): Promise<void> | undefined;
}

/** A RawIo over the WHATWG streams of a connection without a raw path (WebSocket, wrappers). */
export function streamRawIo(conn: ByteConnection): RawIo {
  let writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  let paused = false;
  let wake: (() => void) | null = null;
  return {
    start(sink) {
      const reader = conn.readable.getReader();
      (async () => {
        try {
          while (true) {
            if (paused) await new Promise<void>((r) => (wake = r));
            const { value, done } = await reader.read();
            if (done) break;
            sink.onData(value);
          }
          sink.onEnd();
        } catch (err) {
          sink.onEnd(err instanceof Error ? err : new Error(String(err)));
        } finally {
          reader.releaseLock();
        }
      })();
    },
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
      const w = wake;
      wake = null;
      w?.();
    },
    write(bytes) {
      if (!writer) {
        writer = conn.writable.getWriter();
        // Swallow the rejection of `closed` so an aborted connection is not an unhandled error.
        writer.closed.catch(() => {});
      }
      return writer.write(bytes);
    },
  };
}

/**
 * WHATWG streams over a connection's raw path, for the wrappers that need them (built on
 * demand: the core itself never asks). Reading starts when the stream is created.
 */
export function rawReadable(io: RawIo, close: () => void): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(ctrl) {
      io.start({
        onData(chunk) {
          ctrl.enqueue(chunk);
          if ((ctrl.desiredSize ?? 1) <= 0) io.pause();
        },
        onEnd(err) {
          try {
            if (err) ctrl.error(err);
            else ctrl.close();
          } catch {
            // already cancelled
          }
        },
      });
    },
    pull: () => io.resume(),
    cancel: close,
  }, new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }));
}

export function rawWritable(io: RawIo, close: () => void): WritableStream<Uint8Array> {
  return new WritableStream<Uint8Array>({
    write: (chunk) => io.write(chunk),
    close,
    abort: close,
  });
}

/** Drops the stream-free path, for wrappers that replace `readable` or `writable`. */
export function withStreams(
  conn: ByteConnection,
  changes: Partial<Omit<ByteConnection, "raw">>,
): ByteConnection {
  // Spelled out rather than spread: a connection may be a class whose members live on its
  // prototype, which a spread would drop.
  const out: ByteConnection = {
    readable: changes.readable ?? conn.readable,
    writable: changes.writable ?? conn.writable,
    remoteAddress: changes.remoteAddress ?? conn.remoteAddress,
    transport: changes.transport ?? conn.transport,
    close: changes.close ?? (() => conn.close()),
  };
  const cn = "peerCertificateCN" in changes ? changes.peerCertificateCN : conn.peerCertificateCN;
  return cn === undefined ? out : { ...out, peerCertificateCN: cn };
}
