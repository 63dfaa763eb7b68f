/** PUBREL from a publisher: the inbound QoS 2 packet id is released and PUBCOMP goes out. */
import type { Client } from "../client.ts";
import type { Core } from "../core.ts";

export function handlePubrel(core: Core, client: Client, pid: number): void {
  const s = client.session!;
  if (s.deleteInboundQos2(pid)) core.persistence.removeInboundQos2(s, pid);
  // 5.0: one more QoS 2 PUBLISH may come (Receive Maximum).
  client.v5?.completed(pid);
  // PUBCOMP waits for the commit: the client may reuse the id right after it. An unknown id
  // gets its PUBCOMP too (MQTT-4.3.3-11: the flow must complete).
  client.sendAck(0x70, pid, true);
}
