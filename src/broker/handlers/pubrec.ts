/**
 * PUBREC from a subscriber: the QoS 2 delivery moves to "released" and PUBREL goes out; a 5.0
 * PUBREC with an error code (0x80 and above) ends the flow instead (4.3.3: no PUBREL).
 */
import { ReasonCode } from "../../codec/reason_codes.ts";
import type { Client } from "../client.ts";
import type { Core } from "../core.ts";

export function handlePubrec(core: Core, client: Client, pid: number, reasonCode = 0): void {
  const s = client.session!;
  const e = s.inflight.get(pid);
  if (reasonCode >= 0x80) {
    // MQTT-4.3.3-4: PUBREL only for a code below 0x80; the packet id is free again (4.3.3).
    if (e && e.qos === 2 && e.state === "sent") {
      core.log.debug(
        `client ${s.clientId}: PUBREC 0x${reasonCode.toString(16)} for packet id ${pid}`,
      );
      core.delivery.complete(s, e);
    }
    return;
  }
  if (e && e.qos === 2 && e.state === "sent") {
    e.state = "released";
    core.persistence.putOutbound(s, e);
  } else if (!e) {
    core.log.debug(`client ${s.clientId}: PUBREC for unknown packet id ${pid}`);
    // 5.0: PUBREL 0x92 Packet Identifier not found (3.6.2.1).
    if (client.v5 !== null) {
      client.sendAck(0x62, pid, false, ReasonCode.PacketIdentifierNotFound);
      return;
    }
  }
  // MQTT-4.3.3-3: answer with PUBREL (flags 0x2), also for a repeated PUBREC. For a persistent
  // session it leaves only once "released" is durable: a subscriber that saw PUBREL may forget
  // the id, so a crash must not make us resend the PUBLISH under it.
  client.sendAck(0x62, pid, s.persistent);
}
