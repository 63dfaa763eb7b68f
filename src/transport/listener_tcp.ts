/** The MQTT over TCP listener. */
import type { Logger } from "../log.ts";
import type { ByteConnection } from "../broker/ports/connection.ts";
import { announce, type Front, type Guard, type ListenerBase, proxySuffix } from "./listening.ts";
import { listenTcp } from "./tcp.ts";

/** What the TCP listener needs: where to bind, and whether a PROXY header comes first. */
export type TcpListenerSettings = ListenerBase;

/** Starts the TCP listener; it logs `listening tcp ADDR` once bound. */
export function tcpListener(
  s: TcpListenerSettings,
  accept: (conn: ByteConnection) => void,
  log: Logger,
  guard?: Guard,
): Front {
  const front = listenTcp(
    { hostname: s.host, port: s.port, proxyTimeout: s.proxyTimeout, guard },
    accept,
    log,
  );
  return announce(front, () => `listening tcp ${front.address}${proxySuffix(s)}`, log);
}
