/** The client certificate's CN as the MQTT username (like Mosquitto's use_identity_as_username). */
import type { Logger } from "../log.ts";
import type { Identity } from "./node_socket.ts";

/**
 * The identity a TLS connection carries to the core: the verified certificate's CN and, when
 * `cnAsUsername` is on, the same CN as the username the core uses instead of CONNECT's.
 */
export function certIdentity(
  transport: string,
  remoteAddress: string,
  cn: string | undefined,
  cnAsUsername: boolean,
  log: Logger,
): Identity {
  if (cn === undefined) return {};
  if (!cnAsUsername) {
    log.debug(`${transport} client ${remoteAddress} presented certificate CN=${cn}`);
    return { peerCertificateCN: cn };
  }
  log.info(
    `${transport} client ${remoteAddress} presented certificate CN=${cn}; ` +
      `using it as the username`,
  );
  return { peerCertificateCN: cn, username: cn };
}
