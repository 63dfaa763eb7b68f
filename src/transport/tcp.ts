/** Plain TCP listener: Deno.listen connections adapted to ByteConnection. */
import type { Logger } from "../log.ts";
import { type ByteConnection, type RawIo, withStreams } from "./connection.ts";
import { joinHostPort, ProxyProtocolError, readProxyHeader } from "./proxy_protocol.ts";

export interface Listening {
  /** The bound address, e.g. "0.0.0.0:8885" (the real port when 0 was asked for). */
  readonly address: string;
  readonly port: number;
  close(): void;
}

const MIN_READ = 512;
const MAX_READ = 64 * 1024;

/**
 * Reads into buffers sized to the traffic: an idle or chatty-but-small client holds 512 bytes
 * while waiting, a bulk publisher grows to 64 KiB. Each read gets a fresh buffer because the
 * decoder hands out payloads as views into it.
 */
export function rawDenoConn(conn: Deno.Conn): RawIo {
  let size = MIN_READ;
  return {
    async read() {
      const buf = new Uint8Array(size);
      const n = await conn.read(buf);
      if (n === null) return null;
      if (n === size) size = Math.min(size * 2, MAX_READ);
      else if (n < size >> 2) size = Math.max(size >> 1, MIN_READ);
      return n === buf.length ? buf : buf.subarray(0, n);
    },
    async write(bytes) {
      let off = 0;
      while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    },
  };
}

export function fromDenoConn(conn: Deno.Conn, transport: string): ByteConnection {
  const addr = conn.remoteAddr as Deno.NetAddr;
  let closed = false;
  return {
    // Getters: the streams are created only by a wrapper that needs them.
    get readable() {
      return conn.readable;
    },
    get writable() {
      return conn.writable;
    },
    raw: rawDenoConn(conn),
    remoteAddress: joinHostPort(addr.hostname, addr.port),
    transport,
    close() {
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch {
        // the peer closed first
      }
    },
  };
}

/**
 * Reads the PROXY protocol header a load balancer puts before the client's bytes; the resulting
 * connection reports the real client's address. A connection without a valid header is closed.
 */
export async function withProxyHeader(
  conn: ByteConnection,
  timeoutSeconds: number,
  name: string,
  log: Logger,
): Promise<ByteConnection | undefined> {
  try {
    const { header, readable } = await readProxyHeader(conn.readable, timeoutSeconds * 1000);
    return withStreams(conn, {
      readable,
      writable: conn.writable,
      remoteAddress: header.source ?? conn.remoteAddress,
    });
  } catch (err) {
    const why = err instanceof ProxyProtocolError ? err.message : (err as Error).message;
    log.warn(`${name}: closing connection from ${conn.remoteAddress}: ${why}`);
    conn.close();
    return undefined;
  }
}

export function listenTcp(
  opts: {
    hostname: string;
    port: number;
    /** Seconds to wait for a PROXY protocol header; undefined = none expected. */
    proxyTimeout?: number;
  },
  onConnection: (conn: ByteConnection) => void,
  log: Logger,
): Listening {
  const listener = Deno.listen({ hostname: opts.hostname, port: opts.port, transport: "tcp" });
  const addr = listener.addr as Deno.NetAddr;
  let closed = false;
  (async () => {
    while (!closed) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (closed || err instanceof Deno.errors.BadResource) return;
        // EMFILE and friends: say so and back off instead of spinning.
        log.error(`tcp accept failed: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      try {
        // Small MQTT packets must not wait for Nagle.
        conn.setNoDelay(true);
      } catch {
        // connection already gone
      }
      const plain = fromDenoConn(conn, "tcp");
      if (opts.proxyTimeout === undefined) onConnection(plain);
      else {
        withProxyHeader(plain, opts.proxyTimeout, "tcp", log).then((c) => c && onConnection(c));
      }
    }
  })();
  return {
    address: joinHostPort(addr.hostname, addr.port),
    port: addr.port,
    close() {
      if (closed) return;
      closed = true;
      try {
        listener.close();
      } catch {
        // already closed
      }
    },
  };
}
