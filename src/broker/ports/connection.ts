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
   * Username the transport established for this connection (the verified certificate CN on a
   * listener that uses it as the MQTT username, like Mosquitto's use_identity_as_username). When
   * set, the core uses it instead of the CONNECT packet's username.
   */
  readonly username?: string;
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
  /**
   * As `write`, for several buffers that leave in this order, in one system call where the
   * transport can (absent: the caller writes them one by one).
   */
  writeMany?(chunks: Uint8Array[]): Promise<void> | undefined;
  /**
   * True when a write that returned undefined is done with its bytes (the kernel has them), so
   * the caller may use them again; absent, the transport keeps what it was given.
   */
  readonly returnsBytes?: boolean;
}
