/**
 * Packet → bytes. Every packet is sized exactly first and then written into one Uint8Array,
 * so encoding costs a single allocation. Validation is limited to what would otherwise produce
 * bytes that are not MQTT at all (oversized lengths throw RangeError).
 */
import type {
  AckPacket,
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  Properties,
  ProtocolVersion,
  PublishPacket,
  QoS,
  SubackPacket,
  SubscribePacket,
  UnsubackPacket,
  UnsubscribePacket,
} from "./packets.ts";
import { propertiesLength, writeProperties } from "./properties.ts";
import { utf8Length } from "./utf8.ts";
import {
  binarySize,
  MAX_VBI,
  stringSize,
  vbiLength,
  writeBinary,
  writeString,
  writeU16,
  writeU32,
  writeVbi,
} from "./writer.ts";

/** UTF-8 byte length of `s` (without the 2-byte prefix MQTT puts in front of strings). */
export function encodedLengthOfString(s: string): number {
  return utf8Length(s);
}

/** The one allocation: header written, body to be filled from `headerSize(remaining)` on. */
function frame(first: number, remaining: number): Uint8Array {
  if (remaining > MAX_VBI) {
    throw new RangeError(`remaining length ${remaining} exceeds the MQTT maximum ${MAX_VBI}`);
  }
  const buf = new Uint8Array(1 + vbiLength(remaining) + remaining);
  buf[0] = first;
  writeVbi(buf, 1, remaining);
  return buf;
}

function headerSize(remaining: number): number {
  return 1 + vbiLength(remaining);
}

/** Size of a property block including its length prefix. */
function blockSize(propsLength: number): number {
  return vbiLength(propsLength) + propsLength;
}

/**
 * Encodes `packet` for a peer speaking `version`. Properties and 5.0 reason codes are dropped
 * for levels 3/4. A CONNECT is laid out per `version` but carries its own protocolName and
 * protocolVersion bytes.
 */
export function encode(packet: Packet, version: ProtocolVersion): Uint8Array {
  switch (packet.type) {
    case "connect":
      return encodeConnect(packet, version);
    case "connack":
      return encodeConnack(packet, version);
    case "publish":
      return encodePublish(packet, version).bytes;
    case "puback":
      return encodeAck(packet, 0x40, version);
    case "pubrec":
      return encodeAck(packet, 0x50, version);
    case "pubrel":
      return encodeAck(packet, 0x62, version);
    case "pubcomp":
      return encodeAck(packet, 0x70, version);
    case "subscribe":
      return encodeSubscribe(packet, version);
    case "suback":
      return encodeSuback(packet, version);
    case "unsubscribe":
      return encodeUnsubscribe(packet, version);
    case "unsuback":
      return encodeUnsuback(packet, version);
    case "pingreq":
      return frame(0xc0, 0);
    case "pingresp":
      return frame(0xd0, 0);
    case "disconnect":
      return encodeDisconnectOrAuth(packet, 0xe0, version);
    case "auth":
      if (version !== 5) throw new RangeError("AUTH exists only in MQTT 5.0");
      return encodeDisconnectOrAuth(packet, 0xf0, version);
  }
}

function encodeConnect(p: ConnectPacket, version: ProtocolVersion): Uint8Array {
  const v5 = version === 5;
  const will = p.will;
  let remaining = stringSize(p.protocolName) + 4 + stringSize(p.clientId);
  const propsLength = v5 ? propertiesLength(p.properties) : 0;
  if (v5) remaining += blockSize(propsLength);
  let willPropsLength = 0;
  let flags = p.clean ? 0x02 : 0;
  if (will !== undefined) {
    flags |= 0x04 | (will.qos << 3) | (will.retain ? 0x20 : 0);
    if (v5) {
      willPropsLength = propertiesLength(will.properties);
      remaining += blockSize(willPropsLength);
    }
    remaining += stringSize(will.topic) + binarySize(will.payload);
  }
  if (p.username !== undefined) {
    flags |= 0x80;
    remaining += stringSize(p.username);
  }
  if (p.password !== undefined) {
    flags |= 0x40;
    remaining += binarySize(p.password);
  }
  const buf = frame(0x10, remaining);
  let pos = writeString(buf, headerSize(remaining), p.protocolName);
  buf[pos++] = p.protocolVersion;
  buf[pos++] = flags;
  pos = writeU16(buf, pos, p.keepalive);
  if (v5) pos = writeProperties(buf, pos, p.properties, propsLength);
  pos = writeString(buf, pos, p.clientId);
  if (will !== undefined) {
    if (v5) pos = writeProperties(buf, pos, will.properties, willPropsLength);
    pos = writeString(buf, pos, will.topic);
    pos = writeBinary(buf, pos, will.payload);
  }
  if (p.username !== undefined) pos = writeString(buf, pos, p.username);
  if (p.password !== undefined) writeBinary(buf, pos, p.password);
  return buf;
}

function encodeConnack(p: ConnackPacket, version: ProtocolVersion): Uint8Array {
  const v5 = version === 5;
  const propsLength = v5 ? propertiesLength(p.properties) : 0;
  const remaining = 2 + (v5 ? blockSize(propsLength) : 0);
  const buf = frame(0x20, remaining);
  let pos = headerSize(remaining);
  buf[pos++] = p.sessionPresent ? 1 : 0;
  buf[pos++] = p.reasonCode;
  if (v5) writeProperties(buf, pos, p.properties, propsLength);
  return buf;
}

/**
 * Fast path for fan-out: the bytes of a PUBLISH plus where its packet id sits, so a copy can be
 * patched per subscriber (packetIdOffset is -1 for QoS 0), and where its payload starts (it runs
 * to the end), so a large one can be sent without copying it.
 */
export function encodePublish(
  p: PublishPacket,
  version: ProtocolVersion,
): { bytes: Uint8Array; packetIdOffset: number; payloadOffset: number } {
  const v5 = version === 5;
  const topicSize = stringSize(p.topic);
  const propsLength = v5 ? propertiesLength(p.properties) : 0;
  const remaining = topicSize + (p.qos > 0 ? 2 : 0) + (v5 ? blockSize(propsLength) : 0) +
    p.payload.length;
  const first = 0x30 | (p.dup ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 0x01 : 0);
  const buf = frame(first, remaining);
  let pos = writeString(buf, headerSize(remaining), p.topic);
  let packetIdOffset = -1;
  if (p.qos > 0) {
    packetIdOffset = pos;
    pos = writeU16(buf, pos, p.packetId ?? 0);
  }
  if (v5) pos = writeProperties(buf, pos, p.properties, propsLength);
  buf.set(p.payload, pos);
  return { bytes: buf, packetIdOffset, payloadOffset: pos };
}

/**
 * Size of a 3.1/3.1.1 PUBLISH whose topic takes `topicBytes` bytes in UTF-8, for writing it in
 * place with writePublishV4 (a delivery to a single subscriber needs no shared copy).
 */
export function publishSizeV4(topicBytes: number, payloadLength: number, qos: QoS): number {
  if (topicBytes > 0xffff) {
    throw new RangeError(`string of ${topicBytes} bytes exceeds the 65535-byte MQTT limit`);
  }
  const remaining = 2 + topicBytes + (qos > 0 ? 2 : 0) + payloadLength;
  return 1 + vbiLength(remaining) + remaining;
}

/** Writes a 3.1/3.1.1 PUBLISH at `pos` (sized by publishSizeV4); returns the end position. */
export function writePublishV4(
  buf: Uint8Array,
  pos: number,
  topic: string,
  topicBytes: number,
  payload: Uint8Array,
  qos: QoS,
  retain: boolean,
  packetId: number,
): number {
  pos = writePublishHeaderV4(buf, pos, topic, topicBytes, payload.length, qos, retain, packetId);
  buf.set(payload, pos);
  return pos + payload.length;
}

/**
 * Writes all of a 3.1/3.1.1 PUBLISH but its payload of `payloadLength` bytes, which the caller
 * sends right after (sized by publishSizeV4 minus the payload); returns the end position.
 */
export function writePublishHeaderV4(
  buf: Uint8Array,
  pos: number,
  topic: string,
  topicBytes: number,
  payloadLength: number,
  qos: QoS,
  retain: boolean,
  packetId: number,
): number {
  buf[pos] = 0x30 | (qos << 1) | (retain ? 0x01 : 0);
  pos = writeVbi(buf, pos + 1, 2 + topicBytes + (qos > 0 ? 2 : 0) + payloadLength);
  pos = writeString(buf, pos, topic);
  if (qos > 0) pos = writeU16(buf, pos, packetId);
  return pos;
}

/**
 * The properties a 5.0 message carries to every subscriber (3.3.2.3), encoded once per message,
 * for writePublishV5: a delivery puts its own values (remaining expiry, Subscription Identifiers,
 * Topic Alias) in between, in identifier order, without encoding the rest again.
 */
export interface MessagePropertyBytes {
  /** Payload Format Indicator (0x01), -1 when absent. */
  readonly formatIndicator: number;
  /** Message Expiry Interval (0x02) as received, -1 when absent. */
  readonly expiry: number;
  /** Content Type, Response Topic and Correlation Data (0x03, 0x08, 0x09), encoded. */
  readonly middle: Uint8Array;
  /** User Properties (0x26), encoded: the one message property after Topic Alias (0x23). */
  readonly userProperties: Uint8Array;
}

const NO_BYTES = new Uint8Array(0);

/** A message without properties. */
export const NO_MESSAGE_PROPERTIES: MessagePropertyBytes = Object.freeze({
  formatIndicator: -1,
  expiry: -1,
  middle: NO_BYTES,
  userProperties: NO_BYTES,
});

/** The encoded values of `props` alone (no length prefix), or NO_BYTES. */
function propertyValues(props: Properties): Uint8Array {
  const length = propertiesLength(props);
  if (length === 0) return NO_BYTES;
  const prefix = vbiLength(length);
  const buf = new Uint8Array(prefix + length);
  writeProperties(buf, 0, props, length);
  return buf.subarray(prefix);
}

/**
 * Encodes the message properties of `p` (Payload Format Indicator, Message Expiry Interval,
 * Content Type, Response Topic, Correlation Data, User Properties); anything else in it (a Topic
 * Alias, Subscription Identifiers) belongs to one delivery and is left out.
 */
export function encodeMessageProperties(p: Properties | undefined): MessagePropertyBytes {
  if (p === undefined) return NO_MESSAGE_PROPERTIES;
  const { contentType, responseTopic, correlationData, userProperties } = p;
  const hasMiddle = contentType !== undefined || responseTopic !== undefined ||
    correlationData !== undefined;
  if (
    !hasMiddle && userProperties === undefined && p.payloadFormatIndicator === undefined &&
    p.messageExpiryInterval === undefined
  ) return NO_MESSAGE_PROPERTIES;
  return {
    formatIndicator: p.payloadFormatIndicator ?? -1,
    expiry: p.messageExpiryInterval ?? -1,
    middle: hasMiddle ? propertyValues({ contentType, responseTopic, correlationData }) : NO_BYTES,
    userProperties: userProperties === undefined ? NO_BYTES : propertyValues({ userProperties }),
  };
}

/**
 * Length of the property block (without its length prefix) of a 5.0 PUBLISH of a message with
 * properties `mp`, for one delivery: `expiry` replaces the message's Message Expiry Interval
 * when >= 0, `subscriptionIds` (or null) and `alias` (0 for none) are added.
 */
export function publishPropertiesLengthV5(
  mp: MessagePropertyBytes,
  expiry: number,
  subscriptionIds: readonly number[] | null,
  alias: number,
): number {
  let n = mp.middle.length + mp.userProperties.length;
  if (mp.formatIndicator >= 0) n += 2;
  if (expiry >= 0 || mp.expiry >= 0) n += 5;
  if (subscriptionIds !== null) {
    for (let i = 0; i < subscriptionIds.length; i++) n += 1 + vbiLength(subscriptionIds[i]);
  }
  if (alias > 0) n += 3;
  return n;
}

/**
 * Size of a 5.0 PUBLISH whose topic takes `topicBytes` bytes in UTF-8 (0 when a topic alias
 * stands for it) and whose property block is `propsLength` long (publishPropertiesLengthV5).
 */
export function publishSizeV5(
  topicBytes: number,
  payloadLength: number,
  qos: QoS,
  propsLength: number,
): number {
  if (topicBytes > 0xffff) {
    throw new RangeError(`string of ${topicBytes} bytes exceeds the 65535-byte MQTT limit`);
  }
  const remaining = 2 + topicBytes + (qos > 0 ? 2 : 0) + vbiLength(propsLength) + propsLength +
    payloadLength;
  return 1 + vbiLength(remaining) + remaining;
}

/**
 * Writes a 5.0 PUBLISH at `pos` (sized by publishSizeV5 with the same values), byte for byte
 * what encodePublish makes of the message's properties plus the delivery's values; returns the
 * end position. Nothing is allocated: a delivery with a topic alias or a single subscriber is
 * written straight into the connection's output buffer.
 */
export function writePublishV5(
  buf: Uint8Array,
  pos: number,
  topic: string,
  topicBytes: number,
  payload: Uint8Array,
  qos: QoS,
  retain: boolean,
  dup: boolean,
  packetId: number,
  mp: MessagePropertyBytes,
  propsLength: number,
  expiry: number,
  subscriptionIds: readonly number[] | null,
  alias: number,
): number {
  buf[pos] = 0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 0x01 : 0);
  pos = writeVbi(
    buf,
    pos + 1,
    2 + topicBytes + (qos > 0 ? 2 : 0) + vbiLength(propsLength) + propsLength + payload.length,
  );
  pos = writeString(buf, pos, topic);
  if (qos > 0) pos = writeU16(buf, pos, packetId);
  pos = writeVbi(buf, pos, propsLength);
  if (propsLength > 0) {
    // Identifier order, as writeProperties has it: 0x01, 0x02, 0x03-0x09, 0x0b, 0x23, 0x26.
    if (mp.formatIndicator >= 0) {
      buf[pos++] = 0x01;
      buf[pos++] = mp.formatIndicator;
    }
    const exp = expiry >= 0 ? expiry : mp.expiry;
    if (exp >= 0) {
      buf[pos++] = 0x02;
      pos = writeU32(buf, pos, exp);
    }
    if (mp.middle.length > 0) {
      buf.set(mp.middle, pos);
      pos += mp.middle.length;
    }
    if (subscriptionIds !== null) {
      for (let i = 0; i < subscriptionIds.length; i++) {
        buf[pos++] = 0x0b;
        pos = writeVbi(buf, pos, subscriptionIds[i]);
      }
    }
    if (alias > 0) {
      buf[pos++] = 0x23;
      pos = writeU16(buf, pos, alias);
    }
    if (mp.userProperties.length > 0) {
      buf.set(mp.userProperties, pos);
      pos += mp.userProperties.length;
    }
  }
  buf.set(payload, pos);
  return pos + payload.length;
}

function encodeAck(
  p: AckPacket<"puback" | "pubrec" | "pubrel" | "pubcomp">,
  first: number,
  version: ProtocolVersion,
): Uint8Array {
  const propsLength = version === 5 ? propertiesLength(p.properties) : 0;
  const reasonCode = version === 5 ? p.reasonCode ?? 0 : 0;
  // 5.0 3.4.2.1: Success without properties is sent as the 3.1.1-shaped 2-byte form, and a
  // reason code without properties may drop the property length.
  const remaining = propsLength > 0 ? 3 + blockSize(propsLength) : reasonCode !== 0 ? 3 : 2;
  const buf = frame(first, remaining);
  let pos = writeU16(buf, headerSize(remaining), p.packetId);
  if (remaining > 2) {
    buf[pos++] = reasonCode;
    if (propsLength > 0) writeProperties(buf, pos, p.properties, propsLength);
  }
  return buf;
}

function encodeSubscribe(p: SubscribePacket, version: ProtocolVersion): Uint8Array {
  const v5 = version === 5;
  const propsLength = v5 ? propertiesLength(p.properties) : 0;
  let remaining = 2 + (v5 ? blockSize(propsLength) : 0);
  for (const s of p.subscriptions) remaining += stringSize(s.topic) + 1;
  const buf = frame(0x82, remaining);
  let pos = writeU16(buf, headerSize(remaining), p.packetId);
  if (v5) pos = writeProperties(buf, pos, p.properties, propsLength);
  for (const s of p.subscriptions) {
    pos = writeString(buf, pos, s.topic);
    let options: number = s.qos;
    if (v5) {
      options |= (s.noLocal ? 0x04 : 0) | (s.retainAsPublished ? 0x08 : 0) |
        ((s.retainHandling ?? 0) << 4);
    }
    buf[pos++] = options;
  }
  return buf;
}

function encodeSuback(p: SubackPacket, version: ProtocolVersion): Uint8Array {
  const v5 = version === 5;
  const propsLength = v5 ? propertiesLength(p.properties) : 0;
  const remaining = 2 + (v5 ? blockSize(propsLength) : 0) + p.reasonCodes.length;
  const buf = frame(0x90, remaining);
  let pos = writeU16(buf, headerSize(remaining), p.packetId);
  if (v5) pos = writeProperties(buf, pos, p.properties, propsLength);
  buf.set(p.reasonCodes, pos);
  return buf;
}

function encodeUnsubscribe(p: UnsubscribePacket, version: ProtocolVersion): Uint8Array {
  const v5 = version === 5;
  const propsLength = v5 ? propertiesLength(p.properties) : 0;
  let remaining = 2 + (v5 ? blockSize(propsLength) : 0);
  for (const t of p.topics) remaining += stringSize(t);
  const buf = frame(0xa2, remaining);
  let pos = writeU16(buf, headerSize(remaining), p.packetId);
  if (v5) pos = writeProperties(buf, pos, p.properties, propsLength);
  for (const t of p.topics) pos = writeString(buf, pos, t);
  return buf;
}

function encodeUnsuback(p: UnsubackPacket, version: ProtocolVersion): Uint8Array {
  const v5 = version === 5;
  const propsLength = v5 ? propertiesLength(p.properties) : 0;
  const codes = v5 ? p.reasonCodes ?? [] : [];
  const remaining = 2 + (v5 ? blockSize(propsLength) : 0) + codes.length;
  const buf = frame(0xb0, remaining);
  let pos = writeU16(buf, headerSize(remaining), p.packetId);
  if (v5) pos = writeProperties(buf, pos, p.properties, propsLength);
  buf.set(codes, pos);
  return buf;
}

function encodeDisconnectOrAuth(
  p: DisconnectPacket | AuthPacket,
  first: number,
  version: ProtocolVersion,
): Uint8Array {
  if (version !== 5) return frame(first, 0);
  const propsLength = propertiesLength(p.properties);
  const reasonCode = p.reasonCode ?? 0;
  // 5.0 3.14.2.1 / 3.15.2.1: no body for Success without properties, no property length
  // when there are no properties.
  const remaining = propsLength > 0 ? 1 + blockSize(propsLength) : reasonCode !== 0 ? 1 : 0;
  const buf = frame(first, remaining);
  if (remaining > 0) {
    const pos = headerSize(remaining);
    buf[pos] = reasonCode;
    if (propsLength > 0) writeProperties(buf, pos + 1, p.properties, propsLength);
  }
  return buf;
}
