/**
 * Creating application messages, their MQTT 5 properties and expiry, and keeping the ones that
 * outlive a read buffer small.
 */
import type { Properties, QoS } from "../codec/packets.ts";
import {
  PENDING_DELIVERIES,
  PUBLISHER_ACK,
  PUBLISHER_ACK_ID,
  type StoredMessage,
} from "./model.ts";
import { turnNow } from "./turn_clock.ts";

/**
 * The id a MessageFactory made last, with its parts: `id === prefix + counter.toString(36)`.
 * One object, overwritten by every message made (any factory of the process). The cluster link
 * encodes a message it forwards right after it was made, and writes the id from these parts
 * when `msg.id` is this very string: the id is a two-part (cons) string, and reading its
 * characters makes V8 flatten it first, a copy and an allocation per forwarded message.
 */
export const lastMadeId = { id: "", prefix: "", counter: 0 };

/** Makes messages with ids unique across the cluster and across restarts of a node. */
export class MessageFactory {
  /** Node id plus start time: a restarted node never reuses an id of its earlier run. */
  readonly #prefix: string;
  #counter = 0;

  constructor(nodeId: string) {
    this.#prefix = `${nodeId}-${Date.now().toString(36)}-`;
  }

  /**
   * A new message. `properties` are the message's own MQTT 5 properties (see
   * messageProperties); a Message Expiry Interval among them starts counting now.
   */
  create(
    topic: string,
    payload: Uint8Array,
    qos: QoS,
    retain: boolean,
    origin: string,
    properties?: Properties,
  ): StoredMessage {
    const counter = ++this.#counter;
    const id = `${this.#prefix}${counter.toString(36)}`;
    lastMadeId.id = id;
    lastMadeId.prefix = this.#prefix;
    lastMadeId.counter = counter;
    const createdAt = turnNow();
    // Only QoS 1 deliveries are ever held: a QoS 0 message does without the marks' keys.
    const msg: StoredMessage = qos === 0
      ? { id, topic, payload, qos, retain, createdAt, origin }
      : {
        id,
        topic,
        payload,
        qos,
        retain,
        createdAt,
        origin,
        [PENDING_DELIVERIES]: undefined,
        [PUBLISHER_ACK]: undefined,
        [PUBLISHER_ACK_ID]: undefined,
      };
    if (properties !== undefined) {
      msg.properties = properties;
      const expiry = properties.messageExpiryInterval;
      if (expiry !== undefined) msg.expiresAt = msg.createdAt + expiry * 1000;
    }
    return msg;
  }
}

/**
 * The properties of a PUBLISH (or will) that belong to the message and travel with it to every
 * subscriber (3.3.2.3): Payload Format Indicator, Message Expiry Interval, Content Type,
 * Response Topic, Correlation Data and User Properties, in order. A Topic Alias belongs to the
 * connection (MQTT-3.3.2-7), Subscription Identifiers to each subscription (MQTT-3.3.4-3), and a
 * Will Delay Interval to the will: none of them is kept. Undefined when nothing is left.
 */
export function messageProperties(p: Properties | undefined): Properties | undefined {
  if (p === undefined) return undefined;
  const {
    payloadFormatIndicator,
    messageExpiryInterval,
    contentType,
    responseTopic,
    correlationData,
    userProperties,
  } = p;
  // Most PUBLISHes that carry properties at all carry only a Topic Alias: no object for them.
  if (
    payloadFormatIndicator === undefined && messageExpiryInterval === undefined &&
    contentType === undefined && responseTopic === undefined && correlationData === undefined &&
    userProperties === undefined
  ) return undefined;
  const out: Properties = {};
  if (payloadFormatIndicator !== undefined) out.payloadFormatIndicator = payloadFormatIndicator;
  if (messageExpiryInterval !== undefined) out.messageExpiryInterval = messageExpiryInterval;
  if (contentType !== undefined) out.contentType = contentType;
  if (responseTopic !== undefined) out.responseTopic = responseTopic;
  if (correlationData !== undefined) out.correlationData = correlationData;
  if (userProperties !== undefined) out.userProperties = userProperties;
  return out;
}

/**
 * About what a message's own data weighs in memory, for the limits that count it (queued bytes
 * across sessions, retained bytes): the payload plus the topic and the 5.0 properties, which a
 * client controls as much as the payload (a 64 KiB topic or a megabyte of user properties on an
 * empty payload must not count as nothing). Strings count one byte per UTF-16 unit.
 */
export function messageSize(
  msg: { topic: string; payload: Uint8Array; properties?: Properties },
): number {
  let n = msg.payload.byteLength + msg.topic.length;
  const p = msg.properties;
  if (p !== undefined) {
    n += (p.contentType?.length ?? 0) + (p.responseTopic?.length ?? 0) +
      (p.correlationData?.byteLength ?? 0);
    const up = p.userProperties;
    if (up !== undefined) { for (const [k, v] of up) n += k.length + v.length + 16; }
  }
  return n;
}

/** Whether `msg` has outlived its Message Expiry Interval at `now` (MQTT-3.3.2-5). */
export function isExpired(msg: StoredMessage, now: number): boolean {
  const at = msg.expiresAt;
  return at !== undefined && at <= now;
}

/**
 * The Message Expiry Interval a delivery of `msg` carries at `now`: the received value minus the
 * time the message has waited in the broker (MQTT-3.3.2-6), in whole seconds rounded up, so a
 * message that has not yet expired never says 0. Undefined when the message has no expiry or
 * the value is still the received one (it waited less than a second): the shared encoding,
 * which carries the received value, is then right as it is.
 */
export function remainingExpiry(msg: StoredMessage, now: number): number | undefined {
  const at = msg.expiresAt;
  if (at === undefined) return undefined;
  const received = msg.properties?.messageExpiryInterval;
  const left = Math.ceil((at - now) / 1000);
  if (received !== undefined && left >= received) return undefined;
  return left > 0 ? left : 1;
}

/**
 * Copies a payload out of a larger read buffer, so a message that is kept (retained, queued, in
 * flight) does not pin a whole socket chunk. Messages that are only passed through are not copied.
 */
export function compact(msg: StoredMessage): void {
  const p = msg.payload;
  if (p.buffer.byteLength > p.byteLength * 2 + 256) msg.payload = p.slice();
  // Correlation data is decoded as a view into the same chunk.
  const cd = msg.properties?.correlationData;
  if (cd !== undefined && cd.buffer.byteLength > cd.byteLength * 2 + 256) {
    msg.properties!.correlationData = cd.slice();
  }
}
