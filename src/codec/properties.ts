/**
 * MQTT 5.0 properties (spec 2.2.2): the table of identifiers, which packets may carry each,
 * and their decoding (strict) and encoding (sized first, then written).
 */
import type { Properties, UserProperty } from "./packets.ts";
import { ProtocolError } from "./errors.ts";
import { ReasonCode } from "./reason_codes.ts";
import type { BodyReader } from "./reader.ts";
import {
  binarySize,
  stringSize,
  vbiLength,
  writeBinary,
  writeString,
  writeU16,
  writeU32,
  writeVbi,
} from "./writer.ts";

/** Where a property block sits: a packet type code (1..15) or 0 for a CONNECT's will. */
export const WILL = 0;
const CONNECT = 1;
const CONNACK = 2;
const PUBLISH = 3;
const PUBACK = 4;
const PUBREC = 5;
const PUBREL = 6;
const PUBCOMP = 7;
const SUBSCRIBE = 8;
const SUBACK = 9;
const UNSUBSCRIBE = 10;
const UNSUBACK = 11;
const DISCONNECT = 14;
const AUTH = 15;

const BYTE = 0;
const U16 = 1;
const U32 = 2;
const VBI = 3;
const STRING = 4;
const BINARY = 5;
const PAIR = 6;

const ANY = 0; // no value constraint
const FLAG = 1; // 0 or 1 only
const NONZERO = 2;

interface PropertySpec {
  id: number;
  key: keyof Properties;
  kind: number;
  /** Bit per context (see WILL / packet type codes) that may carry it. */
  where: number;
  check: number;
  /** Spec section that defines it, for error messages about duplicates and ranges. */
  section: string;
  /** Bit for duplicate detection within one property block. */
  bit: number;
}

function on(...contexts: number[]): number {
  let mask = 0;
  for (const c of contexts) mask |= 1 << c;
  return mask;
}

const ACKS = [PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK];

const DEFINITIONS: [number, keyof Properties, number, number, number, string][] = [
  [0x01, "payloadFormatIndicator", BYTE, on(PUBLISH, WILL), FLAG, "3.3.2.3.2"],
  [0x02, "messageExpiryInterval", U32, on(PUBLISH, WILL), ANY, "3.3.2.3.3"],
  [0x03, "contentType", STRING, on(PUBLISH, WILL), ANY, "3.3.2.3.9"],
  [0x08, "responseTopic", STRING, on(PUBLISH, WILL), ANY, "3.3.2.3.5"],
  [0x09, "correlationData", BINARY, on(PUBLISH, WILL), ANY, "3.3.2.3.6"],
  [0x0b, "subscriptionIdentifiers", VBI, on(PUBLISH, SUBSCRIBE), NONZERO, "3.8.2.1.2"],
  [0x11, "sessionExpiryInterval", U32, on(CONNECT, CONNACK, DISCONNECT), ANY, "3.1.2.11.2"],
  [0x12, "assignedClientIdentifier", STRING, on(CONNACK), ANY, "3.2.2.3.7"],
  [0x13, "serverKeepAlive", U16, on(CONNACK), ANY, "3.2.2.3.14"],
  [0x15, "authenticationMethod", STRING, on(CONNECT, CONNACK, AUTH), ANY, "3.1.2.11.9"],
  [0x16, "authenticationData", BINARY, on(CONNECT, CONNACK, AUTH), ANY, "3.1.2.11.10"],
  [0x17, "requestProblemInformation", BYTE, on(CONNECT), FLAG, "3.1.2.11.7"],
  [0x18, "willDelayInterval", U32, on(WILL), ANY, "3.1.3.2.2"],
  [0x19, "requestResponseInformation", BYTE, on(CONNECT), FLAG, "3.1.2.11.6"],
  [0x1a, "responseInformation", STRING, on(CONNACK), ANY, "3.2.2.3.15"],
  [0x1c, "serverReference", STRING, on(CONNACK, DISCONNECT), ANY, "3.2.2.3.16"],
  [0x1f, "reasonString", STRING, on(CONNACK, DISCONNECT, AUTH, ...ACKS), ANY, "3.2.2.3.9"],
  [0x21, "receiveMaximum", U16, on(CONNECT, CONNACK), NONZERO, "3.1.2.11.3"],
  [0x22, "topicAliasMaximum", U16, on(CONNECT, CONNACK), ANY, "3.1.2.11.5"],
  [0x23, "topicAlias", U16, on(PUBLISH), NONZERO, "MQTT-3.3.2-8"],
  [0x24, "maximumQoS", BYTE, on(CONNACK), FLAG, "3.2.2.3.4"],
  [0x25, "retainAvailable", BYTE, on(CONNACK), FLAG, "3.2.2.3.5"],
  [
    0x26,
    "userProperties",
    PAIR,
    on(CONNECT, CONNACK, PUBLISH, WILL, SUBSCRIBE, UNSUBSCRIBE, DISCONNECT, AUTH, ...ACKS),
    ANY,
    "3.1.2.11.8",
  ],
  [0x27, "maximumPacketSize", U32, on(CONNECT, CONNACK), NONZERO, "3.1.2.11.4"],
  [0x28, "wildcardSubscriptionAvailable", BYTE, on(CONNACK), FLAG, "3.2.2.3.11"],
  [0x29, "subscriptionIdentifiersAvailable", BYTE, on(CONNACK), FLAG, "3.2.2.3.12"],
  [0x2a, "sharedSubscriptionAvailable", BYTE, on(CONNACK), FLAG, "3.2.2.3.13"],
];

/** In identifier order, which is also the order the encoder writes them in. */
const SPECS: PropertySpec[] = DEFINITIONS.map(([id, key, kind, where, check, section], i) => ({
  id,
  key,
  kind,
  where,
  check,
  section,
  bit: 1 << i,
}));

const BY_ID: (PropertySpec | undefined)[] = [];
for (const spec of SPECS) BY_ID[spec.id] = spec;

const SUBSCRIPTION_IDENTIFIER = 0x0b;
const USER_PROPERTY = 0x26;
const TOPIC_ALIAS = 0x23;

/**
 * Reads a property block (length VBI first) for `context`; undefined when it is empty, so
 * packets without properties carry no `properties` key at all.
 */
export function readProperties(r: BodyReader, context: number): Properties | undefined {
  const length = r.vbi();
  if (length === 0) return undefined;
  const stop = r.pos + length;
  if (stop > r.end) {
    r.malformed(`property length ${length} exceeds the packet`, "2.2.2.1", "2.2.2.1");
  }
  if (length === 3 && context === PUBLISH && r.buf[r.pos] === TOPIC_ALIAS) {
    // A lone Topic Alias, what most aliased PUBLISHes carry: no general loop for it.
    r.pos++;
    const topicAlias = r.u16();
    if (topicAlias === 0) {
      throw new ProtocolError("topic alias 0", "MQTT-3.3.2-8", ReasonCode.TopicAliasInvalid);
    }
    return { topicAlias };
  }
  const outerEnd = r.end;
  // Narrowing the end makes a property value that runs past the block malformed too.
  r.end = stop;
  const props: Properties = {};
  const values = props as Record<string, unknown>;
  let seen = 0;
  while (r.pos < stop) {
    const id = r.vbi();
    const spec = BY_ID[id];
    if (spec === undefined) {
      r.malformed(`unknown property identifier 0x${id.toString(16)}`, "2.2.2.2");
    }
    if ((spec.where & (1 << context)) === 0) {
      r.malformed(`property ${spec.key} is not allowed in this packet`, "2.2.2.2");
    }
    const repeatable = id === USER_PROPERTY ||
      (id === SUBSCRIPTION_IDENTIFIER && context === PUBLISH);
    if ((seen & spec.bit) !== 0 && !repeatable) {
      r.protocolError(`property ${spec.key} appears more than once`, spec.section);
    }
    seen |= spec.bit;
    switch (spec.kind) {
      case BYTE:
      case U16:
      case U32:
      case VBI: {
        const v = spec.kind === BYTE
          ? r.u8()
          : spec.kind === U16
          ? r.u16()
          : spec.kind === U32
          ? r.u32()
          : r.vbi();
        if (spec.check === FLAG && v > 1) {
          r.protocolError(`property ${spec.key} must be 0 or 1, got ${v}`, spec.section);
        } else if (spec.check === NONZERO && v === 0) {
          if (id === TOPIC_ALIAS) {
            throw new ProtocolError("topic alias 0", "MQTT-3.3.2-8", ReasonCode.TopicAliasInvalid);
          }
          r.protocolError(`property ${spec.key} must not be 0`, spec.section);
        }
        if (id === SUBSCRIPTION_IDENTIFIER) {
          const list = props.subscriptionIdentifiers;
          if (list === undefined) props.subscriptionIdentifiers = [v];
          else list.push(v);
        } else {
          values[spec.key] = v;
        }
        break;
      }
      case STRING:
        values[spec.key] = r.utf8();
        break;
      case BINARY:
        values[spec.key] = r.binary();
        break;
      default: {
        const pair: UserProperty = [r.utf8(), r.utf8()];
        const list = props.userProperties;
        if (list === undefined) props.userProperties = [pair];
        else list.push(pair);
      }
    }
  }
  r.end = outerEnd;
  return props;
}

/** Size of the property values (not including the length VBI in front of them). */
export function propertiesLength(props: Properties | undefined): number {
  if (props === undefined) return 0;
  let n = 0;
  for (let i = 0; i < SPECS.length; i++) {
    const spec = SPECS[i];
    const v = props[spec.key];
    if (v === undefined) continue;
    switch (spec.kind) {
      case BYTE:
        n += 2;
        break;
      case U16:
        n += 3;
        break;
      case U32:
        n += 5;
        break;
      case VBI:
        for (const id of v as number[]) n += 1 + vbiLength(id);
        break;
      case STRING:
        n += 1 + stringSize(v as string);
        break;
      case BINARY:
        n += 1 + binarySize(v as Uint8Array);
        break;
      default:
        for (const [name, value] of v as UserProperty[]) {
          n += 1 + stringSize(name) + stringSize(value);
        }
    }
  }
  return n;
}

/** Writes the length VBI then the properties; `length` comes from propertiesLength. */
export function writeProperties(
  buf: Uint8Array,
  pos: number,
  props: Properties | undefined,
  length: number,
): number {
  pos = writeVbi(buf, pos, length);
  if (props === undefined || length === 0) return pos;
  for (let i = 0; i < SPECS.length; i++) {
    const spec = SPECS[i];
    const v = props[spec.key];
    if (v === undefined) continue;
    const id = spec.id;
    switch (spec.kind) {
      case BYTE:
        buf[pos++] = id;
        buf[pos++] = v as number;
        break;
      case U16:
        buf[pos++] = id;
        pos = writeU16(buf, pos, v as number);
        break;
      case U32:
        buf[pos++] = id;
        pos = writeU32(buf, pos, v as number);
        break;
      case VBI:
        for (const sub of v as number[]) {
          buf[pos++] = id;
          pos = writeVbi(buf, pos, sub);
        }
        break;
      case STRING:
        buf[pos++] = id;
        pos = writeString(buf, pos, v as string);
        break;
      case BINARY:
        buf[pos++] = id;
        pos = writeBinary(buf, pos, v as Uint8Array);
        break;
      default:
        for (const [name, value] of v as UserProperty[]) {
          buf[pos++] = id;
          pos = writeString(buf, pos, name);
          pos = writeString(buf, pos, value);
        }
    }
  }
  return pos;
}
