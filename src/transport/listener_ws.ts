/** The MQTT over WebSocket listener: the WebSocket server runs on each TCP connection's bytes. */
import type { Logger } from "../log.ts";
import type { ByteConnection } from "../broker/ports/connection.ts";
import { announce, type Front, type Guard, type ListenerBase, proxySuffix } from "./listening.ts";
import { listenTcp } from "./tcp.ts";
import { MQTT_SUBPROTOCOLS, parseTrusted } from "./websocket.ts";
import type { WsServerOptions } from "./ws_connection.ts";
import { serveWebSocket } from "./ws_connection.ts";

/** What a WebSocket listener needs beyond where to bind. */
export interface WsListenerSettings extends ListenerBase {
  /** The HTTP path MQTT is served at, e.g. "/mqtt". */
  path: string;
  /** Largest payload a client frame may announce. */
  maxFrameSize: number;
  /** Seconds a client has for its upgrade request. */
  handshakeTimeout: number;
  /** Proxies (IPs, IPv4 CIDRs) whose X-Forwarded-For / X-Real-IP name the client. */
  trustedProxies: readonly string[];
}

/** The per-listener part of the WebSocket server, shared by ws and wss. */
export function wsServerOptions(
  transport: string,
  s: WsListenerSettings,
  log: Logger,
): WsServerOptions {
  return {
    transport,
    path: s.path,
    subprotocols: MQTT_SUBPROTOCOLS,
    maxFrameSize: s.maxFrameSize,
    handshakeTimeoutMs: s.handshakeTimeout * 1000,
    trustedProxies: s.trustedProxies.map(parseTrusted),
    log,
  };
}

/** Starts the WebSocket listener; it logs `listening ws ADDR/PATH` once bound. */
export function wsListener(
  s: WsListenerSettings,
  accept: (conn: ByteConnection) => void,
  log: Logger,
  guard?: Guard,
): Front {
  const server = wsServerOptions("ws", s, log);
  const front = listenTcp(
    { hostname: s.host, port: s.port, proxyTimeout: s.proxyTimeout, name: "ws", guard },
    (conn) => serveWebSocket(conn, server, accept),
    log,
  );
  return announce(front, () => `listening ws ${front.address}${s.path}${proxySuffix(s)}`, log);
}
