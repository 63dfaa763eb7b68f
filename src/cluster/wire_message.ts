/**
 * The layouts of what cluster messages carry (wire.ts frames them): an application message, a
 * will kept for survivors and MQTT 5 properties. A message's flags byte says which optional fields
 * follow; its payload comes last and runs to the end of its frame.
 */
import type { Properties, QoS, UserProperty } from "../codec/packets.ts";
import {
  PENDING_DELIVERIES,
  PUBLISHER_ACK,
  PUBLISHER_ACK_ID,
  type StoredMessage,
} from "../broker/model.ts";
import type { KeptWill } from "../broker/ports/cluster.ts";
import { isMadeId } from "../broker/made_id.ts";
import type { In, Out } from "./wire_fields.ts";
import { putMadeId } from "./wire_made_id.ts";

const NUM = 0;
const STR = 1;
const BIN = 2;
const NUMS = 3;
const PAIRS = 4;

/** Every MQTT 5 property, by its MQTT identifier: a new one in Properties fails to compile. */
const PROPERTIES: Record<keyof Properties, [id: number, kind: number]> = {
  payloadFormatIndicator: [0x01, NUM],
  messageExpiryInterval: [0x02, NUM],
  contentType: [0x03, STR],
  responseTopic: [0x08, STR],
  correlationData: [0x09, BIN],
  subscriptionIdentifiers: [0x0b, NUMS],
  sessionExpiryInterval: [0x11, NUM],
  assignedClientIdentifier: [0x12, STR],
  serverKeepAlive: [0x13, NUM],
  authenticationMethod: [0x15, STR],
  authenticationData: [0x16, BIN],
  requestProblemInformation: [0x17, NUM],
  willDelayInterval: [0x18, NUM],
  requestResponseInformation: [0x19, NUM],
  responseInformation: [0x1a, STR],
  serverReference: [0x1c, STR],
  reasonString: [0x1f, STR],
  receiveMaximum: [0x21, NUM],
  topicAliasMaximum: [0x22, NUM],
  topicAlias: [0x23, NUM],
  maximumQoS: [0x24, NUM],
  retainAvailable: [0x25, NUM],
  userProperties: [0x26, PAIRS],
  maximumPacketSize: [0x27, NUM],
  wildcardSubscriptionAvailable: [0x28, NUM],
  subscriptionIdentifiersAvailable: [0x29, NUM],
  sharedSubscriptionAvailable: [0x2a, NUM],
};
const PROPERTY_BY_ID: ([keyof Properties, number] | undefined)[] = [];
for (const [key, [id, kind]] of Object.entries(PROPERTIES)) {
  PROPERTY_BY_ID[id] = [key as keyof Properties, kind];
}

// StoredMessage flags: qos in bits 0-1, then one bit each.
const RETAIN = 4;
const EXPIRES = 8;
const ORIGIN = 16;
const PROPS = 32;
const HAS_DUP = 64;
const DUP = 128;
// Will flags: qos in bits 0-1, RETAIN and PROPS as above, then:
const USERNAME = 8;

/** Last in its frame: the payload runs to the end. */
export function putMessage(o: Out, m: StoredMessage): void {
  let flags = m.qos | (m.retain ? RETAIN : 0);
  if (m.expiresAt !== undefined) flags |= EXPIRES;
  if (m.origin !== undefined) flags |= ORIGIN;
  if (m.properties !== undefined) flags |= PROPS;
  if (m.dup !== undefined) flags |= HAS_DUP | (m.dup ? DUP : 0);
  o.u8(flags);
  o.f64(m.createdAt);
  if (m.expiresAt !== undefined) o.f64(m.expiresAt);
  // The message just made (a publisher's, forwarded at once): its id from its parts.
  if (isMadeId(m.id) && o.buf !== null) {
    putMadeId(o, o.buf);
  } else o.str(m.id);
  o.str(m.topic);
  if (m.origin !== undefined) o.str(m.origin);
  if (m.properties !== undefined) putProperties(o, m.properties);
  o.rest(m.payload);
}

/** A payload not read yet (a message's payload comes last in its frame). */
const NONE = new Uint8Array(0);

/**
 * `marked`: the message is for delivery here (decodeFrames), and if QoS 1 or 2 gets the keys of
 * the marks a held delivery sets in its literal (see PENDING_DELIVERIES); others (decodeWire: the
 * Redis store, the wills kept for survivors) are written exactly as they were given.
 */
export function getMessage(r: In, marked: boolean): StoredMessage {
  const flags = r.u8();
  const createdAt = r.f64();
  const expiresAt = flags & EXPIRES ? r.f64() : undefined;
  const qos = (flags & 3) as QoS;
  const retain = (flags & RETAIN) !== 0;
  // Messages for delivery get the marks a held delivery sets (see PENDING_DELIVERIES) in place.
  const id = r.id();
  const topic = r.repeated();
  const m: StoredMessage = marked && qos !== 0
    ? {
      id,
      topic,
      payload: NONE,
      qos,
      retain,
      createdAt,
      [PENDING_DELIVERIES]: undefined,
      [PUBLISHER_ACK]: undefined,
      [PUBLISHER_ACK_ID]: undefined,
    }
    : { id, topic, payload: NONE, qos, retain, createdAt };
  if (expiresAt !== undefined) m.expiresAt = expiresAt;
  if (flags & ORIGIN) m.origin = r.repeated();
  if (flags & PROPS) m.properties = getProperties(r);
  if (flags & HAS_DUP) m.dup = (flags & DUP) !== 0;
  m.payload = r.rest();
  return m;
}

export function putWill(o: Out, k: KeptWill): void {
  const w = k.will;
  let flags = w.qos | (w.retain ? RETAIN : 0);
  if (w.properties !== undefined) flags |= PROPS;
  if (k.username !== undefined) flags |= USERNAME;
  o.u8(flags);
  o.varint(k.protocolVersion);
  o.str(w.topic);
  if (k.username !== undefined) o.str(k.username);
  if (w.properties !== undefined) putProperties(o, w.properties);
  o.rest(w.payload);
}

export function getWill(r: In): KeptWill {
  const flags = r.u8();
  const protocolVersion = r.varint();
  const topic = r.str();
  const username = flags & USERNAME ? r.str() : undefined;
  const properties = flags & PROPS ? getProperties(r) : undefined;
  const will: KeptWill["will"] = {
    topic,
    payload: r.rest(),
    qos: (flags & 3) as QoS,
    retain: (flags & RETAIN) !== 0,
  };
  if (properties !== undefined) will.properties = properties;
  const kept: KeptWill = { will, protocolVersion };
  if (username !== undefined) kept.username = username;
  return kept;
}

export function putProperties(o: Out, props: Properties): void {
  const keys = (Object.keys(props) as (keyof Properties)[]).filter((k) => props[k] !== undefined);
  o.varint(keys.length);
  for (const key of keys) {
    const spec = PROPERTIES[key];
    if (!spec) throw new Error(`cluster: property ${key} has no wire encoding`);
    const [id, kind] = spec;
    const v = props[key];
    o.u8(id);
    switch (kind) {
      case NUM:
        o.varint(v as number);
        break;
      case STR:
        o.str(v as string);
        break;
      case BIN:
        o.bytes(v as Uint8Array);
        break;
      case NUMS:
        o.varint((v as number[]).length);
        for (const n of v as number[]) o.varint(n);
        break;
      default:
        o.varint((v as UserProperty[]).length);
        for (const [name, value] of v as UserProperty[]) {
          o.str(name);
          o.str(value);
        }
    }
  }
}

function getProperties(r: In): Properties {
  const props: Record<string, unknown> = {};
  for (let count = r.varint(); count > 0; count--) {
    const id = r.u8();
    const spec = PROPERTY_BY_ID[id];
    if (!spec) throw new Error(`unknown property 0x${id.toString(16)} in a cluster message`);
    const [key, kind] = spec;
    switch (kind) {
      case NUM:
        props[key] = r.varint();
        break;
      case STR:
        props[key] = r.str();
        break;
      case BIN:
        props[key] = r.bytes();
        break;
      case NUMS: {
        const list: number[] = [];
        for (let n = r.varint(); n > 0; n--) list.push(r.varint());
        props[key] = list;
        break;
      }
      default: {
        const list: UserProperty[] = [];
        for (let n = r.varint(); n > 0; n--) list.push([r.str(), r.str()]);
        props[key] = list;
      }
    }
  }
  return props as Properties;
}
