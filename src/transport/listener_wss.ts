/** The MQTT over secure WebSocket listener: TLS, then the WebSocket server on its bytes. */
import type { Logger } from "../log.ts";
import type { ByteConnection } from "../broker/ports/connection.ts";
import { certIdentity } from "./identity.ts";
import { announce, type Front, type Guard, proxySuffix } from "./listening.ts";
import type { TlsListenerSettings } from "./listener_tls.ts";
import { type WsListenerSettings, wsServerOptions } from "./listener_ws.ts";
import { fromNodeSocket } from "./node_socket.ts";
import { listenFront } from "./tls.ts";
import type { TlsMaterial } from "./tls_material.ts";
import { serveWebSocket } from "./ws_connection.ts";

/** A WebSocket listener's settings plus a TLS listener's. */
export type WssListenerSettings = WsListenerSettings & TlsListenerSettings;

/**
 * Starts the secure WebSocket listener with `material` (replaceable later through the Front's
 * setMaterial); it logs `listening wss ADDR/PATH` once bound.
 */
export function wssListener(
  s: WssListenerSettings,
  material: TlsMaterial,
  accept: (conn: ByteConnection) => void,
  log: Logger,
  guard?: Guard,
): Front {
  const server = wsServerOptions("wss", s, log);
  const front = listenFront({
    hostname: s.host,
    port: s.port,
    name: "wss",
    proxyTimeout: s.proxyTimeout,
    tls: { material, clientAuth: s.clientAuth },
    handshakeTimeout: s.handshakeTimeout,
    guard,
  }, (fs) => {
    fs.socket.setNoDelay(true);
    const id = certIdentity("wss", fs.remoteAddress, fs.peerCertificateCN, s.cnAsUsername, log);
    serveWebSocket(fromNodeSocket(fs.socket, fs.remoteAddress, "wss", id), server, accept);
  }, log);
  return announce(front, () => `listening wss ${front.address}${s.path}${proxySuffix(s)}`, log);
}
