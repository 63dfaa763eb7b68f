/**
 * MQTT 5.0 message properties as Kafka record headers, both ways. A message without properties
 * (every 3.1.1 message) adds no header, so its record is unchanged.
 *
 *   header                          property (MQTT 5.0 3.3.2.3)    value
 *   mqtt.payload_format_indicator   Payload Format Indicator       "0" or "1"
 *   mqtt.message_expiry_interval    Message Expiry Interval        seconds, decimal, counted from
 *                                                                  the record's timestamp
 *   mqtt.content_type               Content Type                   UTF-8 string
 *   mqtt.response_topic             Response Topic                 UTF-8 string
 *   mqtt.correlation_data           Correlation Data               the bytes as they are
 *   mqtt.user.<name>                User Property <name>           UTF-8 string; repeated names
 *                                                                  give repeated headers, in order
 *
 * User properties keep their order per name; properties with different names that alternate
 * (a, b, a) come out grouped by name (a, a, b), because kafkajs takes headers as an object whose
 * keys are in first-use order. Topic Alias and Subscription Identifier belong to one connection and
 * are not carried.
 */
import { Buffer } from "node:buffer";
import type { Properties, UserProperty } from "../../codec/packets.ts";

/** A record header value as kafkajs takes and gives it. */
export type HeaderValue = string | Buffer | (string | Buffer)[];

export const PAYLOAD_FORMAT = "mqtt.payload_format_indicator";
export const MESSAGE_EXPIRY = "mqtt.message_expiry_interval";
export const CONTENT_TYPE = "mqtt.content_type";
export const RESPONSE_TOPIC = "mqtt.response_topic";
export const CORRELATION_DATA = "mqtt.correlation_data";
export const USER_PREFIX = "mqtt.user.";

/** Adds the headers for `p` to `headers`. */
export function putPropertyHeaders(p: Properties, headers: Record<string, HeaderValue>): void {
  if (p.payloadFormatIndicator !== undefined) {
    headers[PAYLOAD_FORMAT] = String(p.payloadFormatIndicator);
  }
  if (p.messageExpiryInterval !== undefined) {
    headers[MESSAGE_EXPIRY] = String(p.messageExpiryInterval);
  }
  if (p.contentType !== undefined) headers[CONTENT_TYPE] = p.contentType;
  if (p.responseTopic !== undefined) headers[RESPONSE_TOPIC] = p.responseTopic;
  const cd = p.correlationData;
  if (cd !== undefined) {
    headers[CORRELATION_DATA] = Buffer.from(cd.buffer, cd.byteOffset, cd.byteLength);
  }
  if (p.userProperties !== undefined) {
    for (const [name, value] of p.userProperties) {
      const key = USER_PREFIX + name;
      const had = headers[key];
      if (had === undefined) headers[key] = value;
      else if (Array.isArray(had)) had.push(value);
      else headers[key] = [had, value];
    }
  }
}

/** Headers as a consumer gets them (kafkajs: one value, or an array for a repeated name). */
export type InHeaders = Record<string, Buffer | string | (Buffer | string)[] | undefined>;

const decoder = new TextDecoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * The properties an ingress message gets from its record's headers, or undefined when it has
 * none. A header that cannot be the property (an expiry that is not a number of seconds, a
 * payload format other than 0 or 1, or 1 with a payload that is not UTF-8) is left out.
 */
export function propertiesFromHeaders(
  headers: InHeaders | undefined,
  payload: Uint8Array,
): Properties | undefined {
  if (headers === undefined) return undefined;
  let p: Properties | undefined;
  const user: UserProperty[] = [];
  for (const key in headers) {
    const v = headers[key];
    if (v === undefined) continue;
    if (key.startsWith(USER_PREFIX)) {
      const name = key.slice(USER_PREFIX.length);
      for (const one of Array.isArray(v) ? v : [v]) user.push([name, str(one)]);
      continue;
    }
    const one = Array.isArray(v) ? v[0] : v;
    if (one === undefined) continue;
    switch (key) {
      case PAYLOAD_FORMAT: {
        const f = str(one);
        if (f === "0") (p ??= {}).payloadFormatIndicator = 0;
        // 3.3.2.3.2: 1 promises UTF-8; a payload that is not stays without the promise.
        else if (f === "1" && isUtf8(payload)) (p ??= {}).payloadFormatIndicator = 1;
        break;
      }
      case MESSAGE_EXPIRY: {
        const s = str(one);
        const n = Number(s);
        if (/^\d+$/.test(s) && n <= 0xffffffff) (p ??= {}).messageExpiryInterval = n;
        break;
      }
      case CONTENT_TYPE:
        (p ??= {}).contentType = str(one);
        break;
      case RESPONSE_TOPIC:
        (p ??= {}).responseTopic = str(one);
        break;
      case CORRELATION_DATA:
        // A copy: a view would pin the whole fetch response.
        (p ??= {}).correlationData = typeof one === "string"
          ? new TextEncoder().encode(one)
          : new Uint8Array(one);
        break;
    }
  }
  if (user.length > 0) (p ??= {}).userProperties = user;
  return p;
}

function str(v: Buffer | string): string {
  return typeof v === "string" ? v : decoder.decode(v);
}

function isUtf8(b: Uint8Array): boolean {
  try {
    strictDecoder.decode(b);
    return true;
  } catch {
    return false;
  }
}
