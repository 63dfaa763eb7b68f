/**
 * The UTF-8 of the id of the message made last (lastMadeId), from its parts. A message forwarded
 * or bridged right after it was made (a publisher's, the common case) has its id written without
 * V8 flattening the two-part id string: reading its characters is a copy and an allocation per
 * message. Used by the cluster's wire format and the Kafka record writer.
 */
import { lastMadeId } from "./messages.ts";

/** lastMadeId.id as bytes: `prefix`, then `digits[from..]` (the counter in base 36). */
export interface MadeIdBytes {
  prefix: Uint8Array;
  digits: Uint8Array;
  from: number;
  /** prefix.length + digits.length - from */
  length: number;
}

const utf8 = new TextEncoder();
/** One object, refreshed by every call: read it at once. */
const made: MadeIdBytes = {
  prefix: new Uint8Array(0),
  digits: new Uint8Array(16),
  from: 16,
  length: 0,
};
let madePrefix = "";
let madeCounter = -1;

/** Whether `id` is the id made last, so that madeIdBytes() gives its bytes. */
export function isMadeId(id: string): boolean {
  return id === lastMadeId.id && lastMadeId.counter > 0;
}

/**
 * The bytes of the id made last (see isMadeId). Counters mostly follow each other: the digits of
 * the last one are counted up in place.
 */
export function madeIdBytes(): MadeIdBytes {
  const { prefix, counter } = lastMadeId;
  if (prefix !== madePrefix) {
    made.prefix = utf8.encode(prefix);
    madePrefix = prefix;
  }
  const d = made.digits;
  if (counter === madeCounter + 1 && made.from < d.length) {
    // Base-36 increment: trailing "z"s become "0", the digit before goes up (or a new "1").
    let i = d.length - 1;
    while (i >= made.from && d[i] === 0x7a) d[i--] = 0x30;
    if (i < made.from) d[--made.from] = 0x31;
    else d[i] = d[i] === 0x39 ? 0x61 : d[i] + 1;
  } else if (counter !== madeCounter) {
    let from = d.length;
    let n = counter;
    do {
      const r = n % 36;
      d[--from] = r < 10 ? 0x30 + r : 0x61 + r - 10;
      n = Math.floor(n / 36);
    } while (n > 0);
    made.from = from;
  }
  madeCounter = counter;
  made.length = made.prefix.length + d.length - made.from;
  return made;
}
