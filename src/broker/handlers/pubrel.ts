/** PUBREL from a publisher: the inbound QoS 2 packet id is released and PUBCOMP goes out. */
import { ReasonCode } from "../../codec/reason_codes.ts";
import type { Client } from "../client.ts";
import type { Core } from "../core.ts";

export function handlePubrel(core: Core, client: Client, pid: number): void {
  const s = client.session!;
  const known = s.deleteInboundQos2(pid);
  if (known) core.persistence.removeInboundQos2(s, pid);
  // 5.0: one more QoS 2 PUBLISH may come (Receive Maximum).
  client.v5?.completed(pid);
  // PUBCOMP waits for the commit: the client may reuse the id right after it. An unknown id
  // gets its PUBCOMP too (MQTT-4.3.3-11: the flow must complete); 5.0 says 0x92 Packet
  // Identifier not found (3.7.2.1).
  const code = !known && client.v5 !== null ? ReasonCode.PacketIdentifierNotFound : 0;
  client.sendAck(0x70, pid, true, code);
}
