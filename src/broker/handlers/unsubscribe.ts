/** UNSUBSCRIBE: the session's matching subscriptions removed, then UNSUBACK. */
import { encode } from "../../codec/encoder.ts";
import type { UnsubscribePacket } from "../../codec/packets.ts";
import type { Client } from "../client.ts";
import type { Core } from "../core.ts";

export function handleUnsubscribe(core: Core, client: Client, p: UnsubscribePacket): void {
  const s = client.session!;
  for (const filter of p.topics) {
    if (s.deleteSubscription(filter)) {
      core.subscriptions.remove(filter, s.clientId);
      core.persistence.removeSubscription(s, filter);
      core.events.unsubscribed?.(client.info, filter);
      // Retained messages still owed for the filter are no longer wanted.
      s.retainedFeed?.remove(filter);
    }
  }
  core.stats.subscriptions = core.subscriptions.size;
  client.send(encode({ type: "unsuback", packetId: p.packetId }, client.version), true);
}
