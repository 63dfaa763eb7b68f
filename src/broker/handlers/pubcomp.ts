/** PUBCOMP from a subscriber: the QoS 2 delivery is done, its slot and stored copy freed. */
import type { Client } from "../client.ts";
import type { Core } from "../core.ts";

export function handlePubcomp(core: Core, client: Client, pid: number): void {
  const s = client.session!;
  const e = s.inflight.get(pid);
  if (!e || e.qos !== 2) {
    core.log.debug(`client ${s.clientId}: PUBCOMP for unknown packet id ${pid}`);
    return;
  }
  core.delivery.complete(s, e);
}
