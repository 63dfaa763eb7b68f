/** Plain TCP listener: node:net sockets (see node_socket.ts for why) adapted to ByteConnection. */
import type { Logger } from "../log.ts";
import type { ByteConnection } from "./connection.ts";
import { fromNodeSocket } from "./node_socket.ts";
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
  },
  onConnection: (conn: ByteConnection) => void,
  log: Logger,
): Front {
  return listenFront(
    { hostname: opts.hostname, port: opts.port, name: "tcp", proxyTimeout: opts.proxyTimeout },
    (s) => onConnection(fromNodeSocket(s.socket, s.remoteAddress, "tcp")),
    log,
  );
}
