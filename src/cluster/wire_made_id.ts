/**
 * The id of the message made last (lastMadeId), written as an MQTT string from its parts: a
 * message forwarded right after it was made (a publisher's, the common case) has its id written
 * without V8 flattening the two-part id string (a copy and an allocation per message).
 */
import { lastMadeId } from "../broker/messages.ts";
import type { Out } from "./wire_fields.ts";

/** The UTF-8 of the id prefix putMadeId wrote last (one prefix per factory: mostly one). */
let madePrefix = "";
let madePrefixBytes = new Uint8Array(0);
/** The base-36 digits (ASCII) of the counter putMadeId wrote last, in the last `madeDigits`. */
const madeDigitBytes = new Uint8Array(16);
let madeDigits = 0;
let madeCounter = -1;
const utf8 = new TextEncoder();

/**
 * Writes lastMadeId.id as an MQTT string from its parts, the same bytes as `o.str(id)`, without
 * reading the id's characters (see lastMadeId). Counters mostly follow each other: the digits of
 * the last one are counted up in place.
 */
export function putMadeId(o: Out, b: Uint8Array): void {
  const { prefix, counter } = lastMadeId;
  if (prefix !== madePrefix) {
    madePrefixBytes = utf8.encode(prefix);
    madePrefix = prefix;
  }
  const d = madeDigitBytes;
  if (counter === madeCounter + 1 && madeDigits > 0) {
    // Base-36 increment: trailing "z"s become "0", the digit before goes up (or a new "1").
    let i = d.length - 1;
    while (i >= d.length - madeDigits && d[i] === 0x7a) d[i--] = 0x30;
    if (i < d.length - madeDigits) {
      d[i] = 0x31;
      madeDigits++;
    } else d[i] = d[i] === 0x39 ? 0x61 : d[i] + 1;
  } else {
    madeDigits = 0;
    let n = counter;
    do {
      const r = n % 36;
      d[d.length - ++madeDigits] = r < 10 ? 0x30 + r : 0x61 + r - 10;
      n = Math.floor(n / 36);
    } while (n > 0);
  }
  madeCounter = counter;
  const pre = madePrefixBytes;
  const len = pre.length + madeDigits;
  if (len > 0xffff) {
    throw new RangeError(`string of ${len} bytes exceeds the 65535-byte MQTT limit`);
  }
  let p = o.pos;
  b[p++] = len >> 8;
  b[p++] = len & 0xff;
  for (let i = 0; i < pre.length; i++) b[p++] = pre[i];
  for (let i = d.length - madeDigits; i < d.length; i++) b[p++] = d[i];
  o.pos = p;
}
