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
   * Optional stream-free path for plain sockets. A pending WHATWG stream read costs a 64 KiB
   * buffer plus ~5 KiB of stream objects per connection; `raw` lets the core read with small,
   * adaptive buffers instead, which is what makes tens of thousands of idle connections cheap.
   * When present the core uses it and never touches `readable`/`writable`. A wrapper that
   * rewrites the byte stream (PROXY header, CONNECT rewrite) must drop it.
   */
  readonly raw?: RawIo;
  /** Hard close of the underlying connection; idempotent. */
  close(): void;
}

export interface RawIo {
  /** Next chunk (a fresh buffer the transport never touches again), or null at end of stream. */
  read(): Promise<Uint8Array | null>;
  /** Writes all of `bytes`. */
  write(bytes: Uint8Array): Promise<void>;
}

/** Drops the stream-free path, for wrappers that replace `readable` or `writable`. */
export function withStreams(
  conn: ByteConnection,
  changes: Partial<Omit<ByteConnection, "raw">>,
): ByteConnection {
  const { raw: _raw, ...rest } = conn;
  return { ...rest, ...changes };
}
