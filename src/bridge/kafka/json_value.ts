/**
 * The original MqttWk's JSON value (records.ts mqttwkJson) written as bytes, without the string:
 * JSON.stringify of an array of every payload byte as a number cost microseconds per record.
 * The bytes are the same as the UTF-8 of mqttwkJson's string (tests/bridge/kafka_record_batch).
 */
import type { StoredMessage } from "../../broker/model.ts";
import type { ByteWriter } from "./byte_writer.ts";
import type { RecordContext } from "./record_context.ts";

const encoder = new TextEncoder();
const ascii = (s: string) => encoder.encode(s);

const OPEN = ascii('{"brokerId":');
const CLIENT = ascii(',"clientId":');
const DUP_TRUE = ascii(',"dup":true,"messageBytes":[');
const DUP_FALSE = ascii(',"dup":false,"messageBytes":[');
const QOS = [0, 1, 2].map((q) => ascii(`],"mqttQoS":${q},"processId":`));
const RETAIN_TRUE = ascii(',"retain":true,"topic":');
const RETAIN_FALSE = ascii(',"retain":false,"topic":');
const CLOSE = 0x7d; // }
const COMMA = 0x2c;

/** Each byte's text as a signed 8-bit number (the original wrote Java bytes). */
const BYTE_TEXT: Uint8Array[] = [];
for (let v = 0; v < 256; v++) BYTE_TEXT.push(ascii(String((v << 24) >> 24)));
const BYTE_TEXT_LENGTH = new Uint8Array(BYTE_TEXT.map((b) => b.length));

/** JSON.stringify of strings written again and again (broker id, client ids, topics), as UTF-8. */
const strings = new Map<string, Uint8Array>();

function jsonString(s: string): Uint8Array {
  let b = strings.get(s);
  if (b === undefined) {
    b = encoder.encode(JSON.stringify(s));
    // Client ids and topics are unbounded: start over rather than grow.
    if (strings.size >= 10_000) strings.clear();
    strings.set(s, b);
  }
  return b;
}

/** Bytes of the value for `msg` from `clientId`. */
export function jsonValueLength(msg: StoredMessage, clientId: string, ctx: RecordContext): number {
  const p = msg.payload;
  let n = p.length > 0 ? p.length - 1 : 0; // commas
  for (let i = 0; i < p.length; i++) n += BYTE_TEXT_LENGTH[p[i]];
  return OPEN.length + jsonString(ctx.brokerId).length + CLIENT.length +
    jsonString(clientId).length + (msg.dup ? DUP_TRUE.length : DUP_FALSE.length) + n +
    QOS[msg.qos].length + jsonString(ctx.processId).length +
    (msg.retain ? RETAIN_TRUE.length : RETAIN_FALSE.length) + jsonString(msg.topic).length + 1;
}

/** Writes the value (jsonValueLength bytes) for `msg` from `clientId`. */
export function writeJsonValue(
  w: ByteWriter,
  msg: StoredMessage,
  clientId: string,
  ctx: RecordContext,
): void {
  w.raw(OPEN);
  w.raw(jsonString(ctx.brokerId));
  w.raw(CLIENT);
  w.raw(jsonString(clientId));
  w.raw(msg.dup ? DUP_TRUE : DUP_FALSE);
  const p = msg.payload;
  w.room(p.length * 5);
  const b = w.buf;
  let pos = w.pos;
  for (let i = 0; i < p.length; i++) {
    if (i > 0) b[pos++] = COMMA;
    const t = BYTE_TEXT[p[i]];
    for (let k = 0; k < t.length; k++) b[pos++] = t[k];
  }
  w.pos = pos;
  w.raw(QOS[msg.qos]);
  w.raw(jsonString(ctx.processId));
  w.raw(msg.retain ? RETAIN_TRUE : RETAIN_FALSE);
  w.raw(jsonString(msg.topic));
  w.u8(CLOSE);
}
