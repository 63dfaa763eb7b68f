/**
 * PUBACK from a subscriber: the QoS 1 delivery is done, its slot and stored copy freed, whatever
 * its 5.0 reason code (an error code ends the flow too, 4.3.2).
 */
import type { Client } from "../client.ts";
import type { Core } from "../core.ts";

export function handlePuback(core: Core, client: Client, pid: number): void {
  const s = client.session!;
  const e = s.inflight.get(pid);
  if (!e || e.qos !== 1) {
    core.log.debug(`client ${s.clientId}: PUBACK for unknown packet id ${pid}`);
    return;
  }
  core.delivery.complete(s, e);
}
