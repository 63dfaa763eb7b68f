/**
 * Dispatch of packets from a connected client to their handlers, one file per packet type.
 * CONNECT has its own entry (handleConnect): it is asynchronous and comes first.
 */
import { ProtocolError } from "../../codec/errors.ts";
import type { Packet } from "../../codec/packets.ts";
import { ReasonCode } from "../../codec/reason_codes.ts";
import type { Client } from "../client.ts";
import type { Core } from "../core.ts";
import { handleAuth } from "./auth.ts";
import { handleDisconnect } from "./disconnect.ts";
import { handlePingreq } from "./pingreq.ts";
import { handlePuback } from "./puback.ts";
import { handlePubcomp } from "./pubcomp.ts";
import { handlePublish } from "./publish.ts";
import { handlePubrec } from "./pubrec.ts";
import { handlePubrel } from "./pubrel.ts";
import { handleSubscribe } from "./subscribe.ts";
import { handleUnsubscribe } from "./unsubscribe.ts";

export { handleConnect } from "./connect.ts";

/** Handles one packet of a connected client; throws ProtocolError for what must close it. */
export function dispatch(core: Core, client: Client, p: Packet): void {
  switch (p.type) {
    case "publish":
      return handlePublish(core, client, p);
    case "puback":
      return handlePuback(core, client, p.packetId);
    case "pubrec":
      return handlePubrec(core, client, p.packetId, p.reasonCode ?? 0);
    case "pubrel":
      return handlePubrel(core, client, p.packetId);
    case "pubcomp":
      return handlePubcomp(core, client, p.packetId);
    case "subscribe":
      return handleSubscribe(core, client, p);
    case "unsubscribe":
      return handleUnsubscribe(core, client, p);
    case "pingreq":
      return handlePingreq(client);
    case "disconnect":
      return handleDisconnect(core, client, p);
    case "auth":
      // Type 15 is reserved in 3.1/3.1.1, as below.
      if (client.v5 !== null) return handleAuth(core, client, p);
      break;
    case "connect":
      throw new ProtocolError("second CONNECT", "MQTT-3.1.0-2", ReasonCode.ProtocolError);
  }
  throw new ProtocolError(
    `${p.type.toUpperCase()} is not sent by clients`,
    "MQTT-4.8.0-1",
    ReasonCode.ProtocolError,
  );
}
