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
  if (publishWill && client.will) core.wills.publish(client.info, client.will);
}
