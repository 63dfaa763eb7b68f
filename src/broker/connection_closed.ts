/**
 * The end of a connection, whatever ended it: admission counters, the session detached (kept
 * offline or ended), the will published when due, and one log line.
 */
import type { Client } from "./client.ts";
import type { Core } from "./core.ts";

export function connectionClosed(
  core: Core,
  client: Client,
  reason: string,
  publishWill: boolean,
): void {
  core.clients.delete(client);
  core.congested.delete(client);
  core.stats.connections = core.clients.size;
  core.admission.closed(client.conn.remoteAddress, client.refuse !== null);
  core.wills.release(client, client.info.clientId);
  const s = client.session;
  core.sessions.detach(client);
  if (client.info.clientId && s) {
    core.log.info(`client ${client.info.clientId} disconnected: ${reason}`);
    core.events.clientDisconnected?.(client.info, reason);
  } else {
    core.log.debug(`connection from ${client.conn.remoteAddress} closed: ${reason}`);
  }
  if (publishWill && client.will) willDue(core, client, s);
}

/**
 * The will of a connection that ended without DISCONNECT 0x00: published now, or, with a 5.0
 * Will Delay Interval and a session that lives on, held until the delay or the session ends
 * (MQTT-3.1.3-9).
 */
function willDue(core: Core, client: Client, s: Client["session"]): void {
  const will = client.will!;
  const delay = will.properties?.willDelayInterval ?? 0;
  if (delay > 0 && s !== null && s.client === null && core.sessions.map.get(s.clientId) === s) {
    const seconds = Math.min(delay, s.expiryInterval);
    core.wills.delayed.hold(s, client.info, will, Date.now() + seconds * 1000);
  } else {
    core.wills.publish(client.info, will);
  }
}
