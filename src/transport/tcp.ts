/** Plain TCP listener: Deno.listen connections adapted to ByteConnection. */
import type { Logger } from "../log.ts";
import type { ByteConnection } from "./connection.ts";

export interface Listening {
  /** The bound address, e.g. "0.0.0.0:8885" (the real port when 0 was asked for). */
  readonly address: string;
  readonly port: number;
  close(): void;
}

export function fromDenoConn(conn: Deno.Conn, transport: string): ByteConnection {
  const addr = conn.remoteAddr as Deno.NetAddr;
  let closed = false;
  return {
    readable: conn.readable,
    writable: conn.writable,
    remoteAddress: `${addr.hostname}:${addr.port}`,
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

export function listenTcp(
  opts: { hostname: string; port: number },
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
      onConnection(fromDenoConn(conn, "tcp"));
    }
  })();
  return {
    address: `${addr.hostname}:${addr.port}`,
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
