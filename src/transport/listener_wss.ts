/** The MQTT over secure WebSocket listener: TLS, then the WebSocket server on its bytes. */
import type { Logger } from "../log.ts";
import type { ByteConnection } from "../broker/ports/connection.ts";
import { announce, type Front, type Guard, proxySuffix } from "./listening.ts";
import { listenTlsConnections, type TlsListenerSettings } from "./listener_tls.ts";
import { type WsListenerSettings, wsServerOptions } from "./listener_ws.ts";
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
  const front = listenTlsConnections(
    "wss",
    s,
    material,
    (conn) => serveWebSocket(conn, server, accept),
    log,
    guard,
  );
  return announce(front, () => `listening wss ${front.address}${s.path}${proxySuffix(s)}`, log);
}
