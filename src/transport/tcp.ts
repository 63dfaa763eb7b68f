/**
 * Plain TCP listener: bare native handles (tcp_handle.ts) when the runtime offers them, node:net
 * sockets otherwise (see node_socket.ts for why not
 * Deno.listen).
 */
import type { Logger } from "../log.ts";
import type { ByteConnection } from "../broker/ports/connection.ts";
import { fromNodeSocket } from "./node_socket.ts";
import { listenHandles, nativeTcp } from "./tcp_handle.ts";
import { type Front, listenFront } from "./tls.ts";

export interface Listening {
  /** The bound address, e.g. "0.0.0.0:8885" (the real port when 0 was asked for). */
  readonly address: string;
  readonly port: number;
  close(): void;
}

export function listenTcp(
  opts: {
    hostname: string;
    port: number;
    /** Seconds to wait for a PROXY protocol header; undefined = none expected. */
    proxyTimeout?: number;
    /** false forces node:net sockets even where native handles would do (tests). */
    nativeHandles?: boolean;
  },
  onConnection: (conn: ByteConnection) => void,
  log: Logger,
): Front {
  const native = opts.nativeHandles === false ? null : nativeTcp();
  if (native) {
    return listenHandles(native, { ...opts, name: "tcp" }, onConnection, log);
  }
  if (!native && opts.nativeHandles !== false) {
    log.info("tcp: the runtime offers no native TCP handles; using node:net sockets");
  }
  return listenFront(
    { hostname: opts.hostname, port: opts.port, name: "tcp", proxyTimeout: opts.proxyTimeout },
    (s) => onConnection(fromNodeSocket(s.socket, s.remoteAddress, "tcp")),
    log,
  );
}
