/**
 * Plain TCP listener: bare native handles (tcp_handle.ts) when the runtime offers them, node:net
 * sockets otherwise (see node_socket.ts for why not
 * Deno.listen).
 */
import type { Logger } from "../log.ts";
import type { ByteConnection, RawIo } from "../broker/ports/connection.ts";
import { fromNodeSocket } from "./node_socket.ts";
import { listenHandles, nativeTcp } from "./tcp_handle.ts";
import type { Front, Guard } from "./listening.ts";
import { listenFront } from "./tls.ts";

/** Kept here for the modules that import it from this file. */
export type { Listening } from "./listening.ts";

/** Listens on plain TCP; each connection has the raw path. */
export function listenTcp(
  opts: {
    hostname: string;
    port: number;
    /** Seconds to wait for a PROXY protocol header; undefined = none expected. */
    proxyTimeout?: number;
    /** false forces node:net sockets even where native handles would do (tests). */
    nativeHandles?: boolean;
    /** Listener name for logs; "tcp" unless it carries another protocol (WebSocket). */
    name?: string;
    /** The process-wide socket budget and descriptor watch; absent: no limit (tests). */
    guard?: Guard;
  },
  onConnection: (conn: ByteConnection & { readonly raw: RawIo }) => void,
  log: Logger,
): Front {
  const name = opts.name ?? "tcp";
  const native = opts.nativeHandles === false ? null : nativeTcp();
  if (native) {
    return listenHandles(native, { ...opts, name }, onConnection, log);
  }
  if (!native && opts.nativeHandles !== false) {
    log.info(`${name}: the runtime offers no native TCP handles; using node:net sockets`);
  }
  return listenFront(
    {
      hostname: opts.hostname,
      port: opts.port,
      name,
      proxyTimeout: opts.proxyTimeout,
      guard: opts.guard,
    },
    (s) => onConnection(fromNodeSocket(s.socket, s.remoteAddress, "tcp")),
    log,
  );
}
