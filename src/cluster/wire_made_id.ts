/**
 * The id of the message made last, written as an MQTT string from its parts (madeIdBytes): a
 * message forwarded right after it was made has its id written without V8 flattening it.
 */
import { madeIdBytes } from "../broker/made_id.ts";
import type { Out } from "./wire_fields.ts";

/** Writes lastMadeId.id as an MQTT string into `b` at `o.pos`, the same bytes as `o.str(id)`. */
export function putMadeId(o: Out, b: Uint8Array): void {
  const { prefix, digits, from, length } = madeIdBytes();
  if (length > 0xffff) {
    throw new RangeError(`string of ${length} bytes exceeds the 65535-byte MQTT limit`);
  }
  let p = o.pos;
  b[p++] = length >> 8;
  b[p++] = length & 0xff;
  for (let i = 0; i < prefix.length; i++) b[p++] = prefix[i];
  for (let i = from; i < digits.length; i++) b[p++] = digits[i];
  o.pos = p;
}
