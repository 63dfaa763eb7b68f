/**
 * The broker's replies that may carry properties (PUBACK/PUBREC with a reason, SUBACK,
 * UNSUBACK), kept within a 5.0 client's Maximum Packet Size (MQTT-3.1.2-24).
 *
 * A reply too large loses its Reason String first, then its User Properties, as each packet's
 * rules require (MQTT-3.4.2-2/-3, 3.5.2-2/-3, 3.9.2-1/-2, 3.11.2-1/-2). A reply still too large
 * (a SUBACK or UNSUBACK for more filters than the client's limit has bytes for) cannot be sent
 * and cannot be left out: the client would wait for it forever. The standard says nothing for
 * this case; the connection is closed with DISCONNECT 0x95 Packet too large (4.13.2), which is
 * what 0x95 means. (Mosquitto sends such a SUBACK anyway, over the client's limit.)
 */
import { encode } from "../codec/encoder.ts";
import type {
  PubackPacket,
  PubcompPacket,
  PubrecPacket,
  PubrelPacket,
  SubackPacket,
  UnsubackPacket,
} from "../codec/packets.ts";
import { ReasonCode } from "../codec/reason_codes.ts";
import type { ClientOutput } from "./output.ts";

/** A reply the broker builds with properties. */
export type ReplyPacket =
  | PubackPacket
  | PubrecPacket
  | PubrelPacket
  | PubcompPacket
  | SubackPacket
  | UnsubackPacket;

/**
 * `p` encoded for `client`, without its Reason String and then its User Properties where the
 * client's Maximum Packet Size requires; null when even the bare packet is too large, in which
 * case the connection is closed with DISCONNECT 0x95 (see the module comment).
 */
export function encodeReply(client: ClientOutput, p: ReplyPacket): Uint8Array | null {
  const bytes = encode(p, client.version);
  const v5 = client.v5;
  if (v5 === null || bytes.byteLength <= v5.maxPacketSize) return bytes;
  const props = p.properties;
  if (props !== undefined) {
    if (props.reasonString !== undefined) {
      const { reasonString: _, ...rest } = props;
      const fewer = encode({ ...p, properties: rest } as ReplyPacket, 5);
      if (fewer.byteLength <= v5.maxPacketSize) return fewer;
    }
    const bare = encode({ ...p, properties: undefined } as ReplyPacket, 5);
    if (bare.byteLength <= v5.maxPacketSize) return bare;
  }
  client.close(
    `${p.type.toUpperCase()} of ${bytes.byteLength} bytes exceeds the client's Maximum ` +
      `Packet Size ${v5.maxPacketSize}`,
    true,
    ReasonCode.PacketTooLarge,
  );
  return null;
}
