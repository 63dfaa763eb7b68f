/** The MQTT over TLS listener. */
import type { Logger } from "../log.ts";
import type { ByteConnection, RawIo } from "../broker/ports/connection.ts";
import { certIdentity } from "./identity.ts";
import { announce, type Front, type Guard, type ListenerBase, proxySuffix } from "./listening.ts";
import { fromNodeSocket } from "./node_socket.ts";
import { listenFront } from "./tls.ts";
import type { ClientAuth, TlsMaterial } from "./tls_material.ts";

/** What a TLS-terminating listener needs beyond where to bind. */
export interface TlsListenerSettings extends ListenerBase {
  /** Whether client certificates are requested, and whether one is required. */
  clientAuth: ClientAuth;
  /** Use a verified client certificate's CN as the MQTT username. */
  cnAsUsername: boolean;
  /** Seconds a client has to complete the TLS handshake (the connect timeout). */
  handshakeTimeout: number;
}

/**
 * Starts the TLS listener with `material` (replaceable later through the Front's setMaterial);
 * it logs `listening tls ADDR` once bound.
 */
export function tlsListener(
  s: TlsListenerSettings,
  material: TlsMaterial,
  accept: (conn: ByteConnection) => void,
  log: Logger,
  guard?: Guard,
): Front {
  const front = listenTlsConnections("tls", s, material, accept, log, guard);
  return announce(front, () => `listening tls ${front.address}${proxySuffix(s)}`, log);
}

/**
 * A TLS front whose connections reach `serve` as ByteConnections of `transport`, with the
 * client certificate's identity: the part the TLS and the secure WebSocket listener share.
 */
export function listenTlsConnections(
  transport: "tls" | "wss",
  s: TlsListenerSettings,
  material: TlsMaterial,
  serve: (conn: ByteConnection & { readonly raw: RawIo }) => void,
  log: Logger,
  guard?: Guard,
): Front {
  return listenFront({
    hostname: s.host,
    port: s.port,
    name: transport,
    proxyTimeout: s.proxyTimeout,
    tls: { material, clientAuth: s.clientAuth },
    handshakeTimeout: s.handshakeTimeout,
    guard,
  }, (fs) => {
    fs.socket.setNoDelay(true);
    const id = certIdentity(transport, fs.remoteAddress, fs.peerCertificateCN, s.cnAsUsername, log);
    serve(fromNodeSocket(fs.socket, fs.remoteAddress, transport, id));
  }, log);
}
