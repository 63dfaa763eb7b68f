/**
 * Encode-once for fan-out: the bytes of a message's PUBLISH are built once per variant
 * (protocol family, QoS, RETAIN) and shared. QoS 0 subscribers share the very same buffer; QoS
 * 1/2 subscribers get it copied into their output buffer with their packet id (and DUP) patched
 * in (see Client.sendPublish).
 *
 * A 5.0 delivery that needs values of its own (a topic alias, the remaining expiry of a message
 * that waited) is written in place from the message's properties encoded once
 * (messagePropertyBytes) plus those values (Mqtt5Connection.prepare), or built by
 * encodePublishV5 where it is shared.
 */
import {
  encodeMessageProperties,
  encodePublish,
  type MessagePropertyBytes,
  NO_MESSAGE_PROPERTIES,
} from "../codec/encoder.ts";
import type { Properties, ProtocolVersion, QoS } from "../codec/packets.ts";
import type { StoredMessage } from "./model.ts";

export interface PublishTemplate {
  bytes: Uint8Array;
  /** -1 for QoS 0. */
  packetIdOffset: number;
  /** Where the payload starts; it runs to the end. */
  payloadOffset: number;
}

/**
 * Templates live on the message under a symbol: a WeakMap keyed by millions of short-lived
 * messages costs far more in GC, and symbol-keyed properties are invisible to JSON and structured
 * clone, so stores never persist them.
 */
const TEMPLATES = Symbol("publishTemplates");

type Cached = StoredMessage & { [TEMPLATES]?: (PublishTemplate | undefined)[] };

/** Whether a PUBLISH template of `msg` was built already (for another session's delivery). */
export function hasTemplates(msg: StoredMessage): boolean {
  return (msg as Cached)[TEMPLATES] !== undefined;
}

export function publishTemplate(
  msg: StoredMessage,
  version: ProtocolVersion,
  qos: QoS,
  retain: boolean,
): PublishTemplate {
  const m = msg as Cached;
  const variants = m[TEMPLATES] ??= [];
  // 3.1 and 3.1.1 PUBLISH are byte-identical; 5.0 adds properties.
  const idx = (version === 5 ? 6 : 0) + qos * 2 + (retain ? 1 : 0);
  let t = variants[idx];
  if (t === undefined) {
    const properties = version === 5 ? msg.properties : undefined;
    t = encodeTemplate(msg, msg.topic, qos, retain, properties, version);
    variants[idx] = t;
  }
  return t;
}

/** A PUBLISH of `msg` with a placeholder packet id, which each client patches with its own. */
function encodeTemplate(
  msg: StoredMessage,
  topic: string,
  qos: QoS,
  retain: boolean,
  properties: Properties | undefined,
  version: ProtocolVersion,
): PublishTemplate {
  return encodePublish({
    type: "publish",
    topic,
    payload: msg.payload,
    qos,
    retain,
    dup: false,
    packetId: qos > 0 ? 1 : undefined,
    properties,
  }, version);
}

/**
 * What one 5.0 delivery sets on top of the message's own properties. Absent fields leave the
 * message's value (or its absence) as it is.
 */
export interface DeliveryValues {
  /** The topic as sent: "" when `topicAlias` stands for it (3.3.2.3.4). */
  topic?: string;
  topicAlias?: number;
  /** The remaining Message Expiry Interval, seconds (MQTT-3.3.2-6); see remainingExpiry. */
  messageExpiryInterval?: number;
  /** The identifiers of the subscriptions this delivery is for (MQTT-3.3.4-3). */
  subscriptionIdentifiers?: number[];
}

/**
 * The 5.0 PUBLISH of `msg` for one delivery: the message's properties, unchanged and in order,
 * with `values` applied. Built for this delivery alone (not cached): only deliveries that differ
 * from the shared encoding come here.
 */
export function encodePublishV5(
  msg: StoredMessage,
  qos: QoS,
  retain: boolean,
  values: DeliveryValues,
): PublishTemplate {
  const properties: Properties = { ...msg.properties };
  if (values.topicAlias !== undefined) properties.topicAlias = values.topicAlias;
  if (values.messageExpiryInterval !== undefined) {
    properties.messageExpiryInterval = values.messageExpiryInterval;
  }
  if (values.subscriptionIdentifiers !== undefined) {
    properties.subscriptionIdentifiers = values.subscriptionIdentifiers;
  }
  return encodeTemplate(msg, values.topic ?? msg.topic, qos, retain, properties, 5);
}

/** The 5.0 encodings of a message for one remaining-expiry value (see expiringTemplate). */
const EXPIRING = Symbol("expiringTemplates");

type WithExpiring = StoredMessage & {
  [EXPIRING]?: { seconds: number; variants: (PublishTemplate | undefined)[] };
};

/**
 * The 5.0 PUBLISH of a message that waited, carrying `seconds` as its remaining expiry, shared
 * by every delivery that sends the same value: a retained or queued message handed to many
 * subscribers within one second is still encoded once per variant. Only the latest value is
 * kept; a new second replaces it.
 */
export function expiringTemplate(
  msg: StoredMessage,
  qos: QoS,
  retain: boolean,
  seconds: number,
): PublishTemplate {
  const m = msg as WithExpiring;
  let cache = m[EXPIRING];
  if (cache === undefined || cache.seconds !== seconds) {
    cache = m[EXPIRING] = { seconds, variants: [] };
  }
  const idx = qos * 2 + (retain ? 1 : 0);
  return cache.variants[idx] ??= encodePublishV5(msg, qos, retain, {
    messageExpiryInterval: seconds,
  });
}

/** The 5.0 variants with Subscription Identifiers, by variant index and identifiers. */
const TEMPLATES_WITH_IDS = Symbol("publishTemplatesWithIds");

type CachedWithIds = StoredMessage & { [TEMPLATES_WITH_IDS]?: Map<string, PublishTemplate> };

/**
 * The 5.0 PUBLISH of `msg` carrying `subscriptionIds` (MQTT-3.3.4-3): encoded once per
 * distinct set of identifiers, so subscribers that share an identifier share the bytes too.
 */
export function publishTemplateWithIds(
  msg: StoredMessage,
  qos: QoS,
  retain: boolean,
  subscriptionIds: number[],
): PublishTemplate {
  const m = msg as CachedWithIds;
  const variants = m[TEMPLATES_WITH_IDS] ??= new Map();
  const key = `${qos * 2 + (retain ? 1 : 0)}:${subscriptionIds}`;
  let t = variants.get(key);
  if (t === undefined) {
    const properties = { ...msg.properties, subscriptionIdentifiers: subscriptionIds };
    t = encodeTemplate(msg, msg.topic, qos, retain, properties, 5);
    variants.set(key, t);
  }
  return t;
}

/** A message's properties encoded for in-place 5.0 PUBLISHes (see messagePropertyBytes). */
const PROPERTY_BYTES = Symbol("messagePropertyBytes");

type WithPropertyBytes = StoredMessage & { [PROPERTY_BYTES]?: MessagePropertyBytes };

/**
 * The message's properties as bytes, encoded on first use and kept on the message, so each
 * 5.0 delivery written in place only copies them in (messages without properties share one
 * constant and cache nothing).
 */
export function messagePropertyBytes(msg: StoredMessage): MessagePropertyBytes {
  if (msg.properties === undefined) return NO_MESSAGE_PROPERTIES;
  const m = msg as WithPropertyBytes;
  return m[PROPERTY_BYTES] ??= encodeMessageProperties(msg.properties);
}
