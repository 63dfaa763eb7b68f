/** UNSUBSCRIBE: the session's matching subscriptions removed, then UNSUBACK (5.0: with codes). */
import type { UnsubscribePacket } from "../../codec/packets.ts";
import { ReasonCode } from "../../codec/reason_codes.ts";
import type { Client } from "../client.ts";
import type { Core } from "../core.ts";
import { encodeReply } from "../replies.ts";

export function handleUnsubscribe(core: Core, client: Client, p: UnsubscribePacket): void {
  const s = client.session!;
  // 5.0: one reason code per filter (MQTT-3.11.3-1): 0x00, or 0x11 No subscription existed.
  const codes: number[] | undefined = client.version === 5 ? [] : undefined;
  for (const filter of p.topics) {
    if (s.deleteSubscription(filter)) {
      core.subscriptions.remove(filter, s.clientId);
      core.persistence.removeSubscription(s, filter);
      core.events.unsubscribed?.(client.info, filter);
      // Retained messages still owed for the filter are no longer wanted.
      s.retainedFeed?.remove(filter);
      codes?.push(ReasonCode.Success);
    } else codes?.push(ReasonCode.NoSubscriptionExisted);
  }
  core.stats.subscriptions = core.subscriptions.size;
  // Within the client's Maximum Packet Size, or the connection is closed (replies.ts).
  const unsuback = encodeReply(client, {
    type: "unsuback",
    packetId: p.packetId,
    reasonCodes: codes,
  });
  if (unsuback !== null) client.send(unsuback, true);
}
