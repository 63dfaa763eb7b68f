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
  /** Hard close of the underlying connection; idempotent. */
  close(): void;
}
