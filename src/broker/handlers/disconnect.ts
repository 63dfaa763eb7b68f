/**
 * DISCONNECT: the will is discarded (MQTT-3.14.4-3) and the connection closed. In 5.0 the reason
 * code decides about the will (0x00 discards it; 0x04 and any other code keep it, so it is
 * published), and a Session Expiry Interval changes the session's expiry (MQTT-3.14.2-2: not
 * from 0 to non-zero).
 */
import { ProtocolError } from "../../codec/errors.ts";
import type { DisconnectPacket } from "../../codec/packets.ts";
import { ReasonCode } from "../../codec/reason_codes.ts";
import type { Client } from "../client.ts";
import type { Core } from "../core.ts";

export function handleDisconnect(core: Core, client: Client, p: DisconnectPacket): void {
  const v5 = client.v5;
  if (v5 !== null) {
    const expiry = p.properties?.sessionExpiryInterval;
    if (expiry !== undefined) {
      if (v5.connectExpiry === 0 && expiry !== 0) {
        throw new ProtocolError(
          "DISCONNECT sets a Session Expiry Interval after CONNECT had 0",
          "MQTT-3.14.2-2",
          ReasonCode.ProtocolError,
        );
      }
      core.sessions.changeExpiry(client.session!, expiry);
    }
  }
  client.disconnectGracefully(p.reasonCode ?? 0);
}
