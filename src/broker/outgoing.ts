/**
 * Encode-once for fan-out: the bytes of a message's PUBLISH are built once per variant
 * (protocol family, QoS, RETAIN) and shared. QoS 0 subscribers share the very same buffer; QoS
 * 1/2 subscribers get it copied into their output buffer with their packet id (and DUP) patched
 * in (see Client.sendPublish).
 */
import { encodePublish } from "../codec/encoder.ts";
import type { ProtocolVersion, QoS } from "../codec/packets.ts";
import type { StoredMessage } from "./model.ts";

export interface PublishTemplate {
  bytes: Uint8Array;
  /** -1 for QoS 0. */
  packetIdOffset: number;
}

/**
 * Templates live on the message under a symbol: a WeakMap keyed by millions of short-lived
 * messages costs far more in GC, and symbol-keyed properties are invisible to JSON and structured
 * clone, so stores never persist them.
 */
const TEMPLATES = Symbol("publishTemplates");

type Cached = StoredMessage & { [TEMPLATES]?: (PublishTemplate | undefined)[] };

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
  return t;
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
    t = encodePublish({
      type: "publish",
      topic: msg.topic,
      payload: msg.payload,
      qos,
      retain,
      dup: false,
      packetId: qos > 0 ? 1 : undefined,
      properties: withSubscriptionIds(msg.properties, subscriptionIds),
    }, 5);
    variants.set(key, t);
  }
  return t;
}

/** A message's properties with the Subscription Identifiers of one delivery. */
export function withSubscriptionIds(
  properties: StoredMessage["properties"],
  subscriptionIds: number[],
): NonNullable<StoredMessage["properties"]> {
  return { ...properties, subscriptionIdentifiers: subscriptionIds };
}
