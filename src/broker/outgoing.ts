/**
 * Encode-once for fan-out: the bytes of a message's PUBLISH are built once per variant
 * (protocol family, QoS, RETAIN) and shared. QoS 0 subscribers share the very same buffer; QoS
 * 1/2 subscribers get a copy with their packet id (and DUP) patched in.
 */
import { encodePublish } from "../codec/encoder.ts";
import type { ProtocolVersion, QoS } from "../codec/packets.ts";
import type { StoredMessage } from "../store/store.ts";

interface Template {
  bytes: Uint8Array;
  packetIdOffset: number;
}

const cache = new WeakMap<StoredMessage, (Template | undefined)[]>();

export function publishBytes(
  msg: StoredMessage,
  version: ProtocolVersion,
  qos: QoS,
  retain: boolean,
  packetId: number,
  dup: boolean,
): Uint8Array {
  let variants = cache.get(msg);
  if (!variants) {
    variants = [];
    cache.set(msg, variants);
  }
  // 3.1 and 3.1.1 PUBLISH are byte-identical; 5.0 adds properties.
  const idx = (version === 5 ? 6 : 0) + qos * 2 + (retain ? 1 : 0);
  let t = variants[idx];
  if (t === undefined) {
    t = encodePublish({
      type: "publish",
      topic: msg.topic,
      payload: msg.payload,
      qos,
      retain,
      dup: false,
      packetId: qos > 0 ? 1 : undefined,
      properties: version === 5 ? msg.properties : undefined,
    }, version);
    variants[idx] = t;
  }
  const tpl: Template = t;
  if (qos === 0) return tpl.bytes;
  const b = tpl.bytes.slice();
  b[tpl.packetIdOffset] = packetId >> 8;
  b[tpl.packetIdOffset + 1] = packetId & 0xff;
  if (dup) b[0] |= 0x08;
  return b;
}
