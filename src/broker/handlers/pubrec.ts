/** PUBREC from a subscriber: the QoS 2 delivery moves to "released" and PUBREL goes out. */
import type { Client } from "../client.ts";
import type { Core } from "../core.ts";

export function handlePubrec(core: Core, client: Client, pid: number): void {
  const s = client.session!;
  const e = s.inflight.get(pid);
  if (e && e.qos === 2 && e.state === "sent") {
    e.state = "released";
    core.persistence.putOutbound(s, e);
  } else if (!e) {
    core.log.debug(`client ${s.clientId}: PUBREC for unknown packet id ${pid}`);
  }
  // MQTT-4.3.3-3: answer with PUBREL (flags 0x2), also for a repeated PUBREC. For a persistent
  // session it leaves only once "released" is durable: a subscriber that saw PUBREL may forget
  // the id, so a crash must not make us resend the PUBLISH under it.
  client.sendAck(0x62, pid, s.persistent);
}
