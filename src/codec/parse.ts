/**
 * Turns one complete packet (fixed header byte + body) into a Packet, enforcing the spec's
 * well-formedness rules. Framing lives in decoder.ts; this file never sees partial packets.
 */
import type {
  AckPacket,
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  ProtocolVersion,
  PublishPacket,
  QoS,
  SubackPacket,
  SubscribePacket,
  Subscription,
  UnsubackPacket,
  UnsubscribePacket,
  Will,
} from "./packets.ts";
import { ProtocolError } from "./errors.ts";
import { ReasonCode } from "./reason_codes.ts";
import type { BodyReader } from "./reader.ts";
import { readProperties, WILL } from "./properties.ts";

const NAMES = [
  "reserved",
  "CONNECT",
  "CONNACK",
  "PUBLISH",
  "PUBACK",
  "PUBREC",
  "PUBREL",
  "PUBCOMP",
  "SUBSCRIBE",
  "SUBACK",
  "UNSUBSCRIBE",
  "UNSUBACK",
  "PINGREQ",
  "PINGRESP",
  "DISCONNECT",
  "AUTH",
];

const ACK_TYPES = ["", "", "", "", "puback", "pubrec", "pubrel", "pubcomp"] as const;
type AckType = (typeof ACK_TYPES)[4 | 5 | 6 | 7];

/** Statement that fixes the flags of PUBREL / SUBSCRIBE / UNSUBSCRIBE (same id in both specs). */
const FLAGS_TWO: Record<number, string> = {
  6: "MQTT-3.6.1-1",
  8: "MQTT-3.8.1-1",
  10: "MQTT-3.10.1-1",
};

function malformed(message: string, statement: string): never {
  throw new ProtocolError(message, statement, ReasonCode.MalformedPacket);
}

/**
 * Validates the first byte as soon as it arrives, so a desynchronised or hostile stream is
 * refused before its remaining length is even read.
 */
export function checkFixedHeader(header: number, level: ProtocolVersion): void {
  const type = header >> 4;
  const flags = header & 0x0f;
  const v5 = level === 5;
  switch (type) {
    case 0:
      return malformed("packet type 0 is reserved", v5 ? "2.1.2" : "2.2.1");
    case 3: {
      const qos = (flags >> 1) & 3;
      if (qos === 3) malformed("PUBLISH with QoS 3", "MQTT-3.3.1-4");
      if (qos === 0 && (flags & 0x08) !== 0) {
        malformed("PUBLISH QoS 0 with DUP set", "MQTT-3.3.1-2");
      }
      return;
    }
    case 6:
    case 8:
    case 10:
      // MQTT 3.1 clients set DUP on retried PUBREL/SUBSCRIBE/UNSUBSCRIBE, which 3.1 allowed.
      if ((level === 3 ? flags & 0x07 : flags) !== 0x02) {
        malformed(
          `${NAMES[type]} fixed header flags must be 0x2, got 0x${flags.toString(16)}`,
          FLAGS_TWO[type],
        );
      }
      return;
    case 15:
      if (!v5) malformed("packet type 15 is reserved before MQTT 5.0", "2.2.1");
      // falls through
    default:
      if (flags !== 0) {
        malformed(
          `${NAMES[type]} fixed header flags must be 0, got 0x${flags.toString(16)}`,
          v5 ? "MQTT-2.1.3-1" : "MQTT-2.2.2-2",
        );
      }
  }
}

/**
 * Parses the body the reader is positioned on. `level` is the decoder's current level; a CONNECT
 * is parsed by the level it announces instead.
 */
export function parsePacket(r: BodyReader, header: number, level: ProtocolVersion): Packet {
  const type = header >> 4;
  switch (type) {
    case 1:
      return parseConnect(r);
    case 2:
      return parseConnack(r, level);
    case 3:
      return parsePublish(r, header);
    case 4:
    case 5:
    case 6:
    case 7:
      return parseAck(r, type);
    case 8:
      return parseSubscribe(r);
    case 9:
      return parseSuback(r);
    case 10:
      return parseUnsubscribe(r);
    case 11:
      return parseUnsuback(r);
    case 12:
      r.expectEnd("PINGREQ");
      return { type: "pingreq" };
    case 13:
      r.expectEnd("PINGRESP");
      return { type: "pingresp" };
    case 14:
      return parseDisconnectOrAuth(r, "disconnect");
    default:
      return parseDisconnectOrAuth(r, "auth");
  }
}

function parseConnect(r: BodyReader): ConnectPacket {
  const protocolName = r.utf8();
  const level = r.u8();
  const flags = r.u8();
  const keepalive = r.u16();
  if (level === 3 || level === 4 || level === 5) {
    r.v5 = level === 5;
    return parseConnectPayload(r, protocolName, level, flags, keepalive, level);
  }
  // An unknown level is the broker's to refuse (CONNACK 0x01 / 0x84), so it gets a packet.
  // Its payload layout is unknowable; the 3.1.1 one is tried, and ignored if it does not fit.
  r.v5 = false;
  const version = level as ProtocolVersion;
  try {
    return parseConnectPayload(r, protocolName, version, flags, keepalive, 4);
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    r.pos = r.end;
    return {
      type: "connect",
      protocolName,
      protocolVersion: version,
      clean: (flags & 0x02) !== 0,
      keepalive,
      clientId: "",
    };
  }
}

function parseConnectPayload(
  r: BodyReader,
  protocolName: string,
  version: ProtocolVersion,
  flags: number,
  keepalive: number,
  layout: ProtocolVersion,
): ConnectPacket {
  if ((flags & 0x01) !== 0) r.malformed("CONNECT reserved flag is set", "MQTT-3.1.2-3");
  const willFlag = (flags & 0x04) !== 0;
  const willQos = (flags >> 3) & 3;
  const willRetain = (flags & 0x20) !== 0;
  const hasUsername = (flags & 0x80) !== 0;
  const hasPassword = (flags & 0x40) !== 0;
  if (!willFlag) {
    if (willQos !== 0) {
      r.malformed("will QoS set without will flag", "MQTT-3.1.2-13", "MQTT-3.1.2-11");
    }
    if (willRetain) {
      r.malformed("will retain set without will flag", "MQTT-3.1.2-15", "MQTT-3.1.2-13");
    }
  } else if (willQos === 3) {
    r.malformed("will QoS 3", "MQTT-3.1.2-14", "MQTT-3.1.2-12");
  }
  if (layout !== 5 && hasPassword && !hasUsername) {
    r.protocolError("password flag set without user name flag", "MQTT-3.1.2-22");
  }
  const properties = layout === 5 ? readProperties(r, 1) : undefined;
  if (
    properties?.authenticationData !== undefined && properties.authenticationMethod === undefined
  ) {
    r.protocolError("authentication data without authentication method", "3.1.2.11.10");
  }
  const packet: ConnectPacket = {
    type: "connect",
    protocolName,
    protocolVersion: version,
    clean: (flags & 0x02) !== 0,
    keepalive,
    clientId: r.utf8(),
  };
  if (properties !== undefined) packet.properties = properties;
  if (willFlag) {
    const willProperties = layout === 5 ? readProperties(r, WILL) : undefined;
    const topic = topicName(r, "will topic");
    if (topic === "") {
      throw new ProtocolError("empty will topic", "MQTT-4.7.3-1", ReasonCode.TopicNameInvalid);
    }
    const will: Will = { topic, payload: r.binary(), qos: willQos as QoS, retain: willRetain };
    if (willProperties !== undefined) will.properties = willProperties;
    packet.will = will;
  }
  if (hasUsername) packet.username = r.utf8();
  if (hasPassword) packet.password = r.binary();
  r.expectEnd("CONNECT");
  return packet;
}

/** Reads a Topic Name and refuses wildcards in it (they only belong in Topic Filters). */
function topicName(r: BodyReader, what: string): string {
  const topic = r.utf8();
  const buf = r.buf;
  // '+' and '#' bytes can only be those characters in UTF-8, so scanning bytes is exact.
  for (let i = r.lastStart; i < r.pos; i++) {
    const b = buf[i];
    if (b === 0x2b || b === 0x23) {
      // 0x90 rather than a generic code: it is the reason that tells a 5.0 peer what was wrong.
      throw new ProtocolError(
        `${what} contains a wildcard`,
        what === "topic name" ? "MQTT-3.3.2-2" : r.id("MQTT-4.7.1-1", "MQTT-4.7.0-1"),
        ReasonCode.TopicNameInvalid,
      );
    }
  }
  return topic;
}

function parseConnack(r: BodyReader, level: ProtocolVersion): ConnackPacket {
  const flags = r.u8();
  // In 3.1 this byte was unused, so only 3.1.1 and 5.0 reserve its upper bits.
  if (level !== 3 && (flags & 0xfe) !== 0) {
    r.malformed("CONNACK reserved acknowledge flags are set", "3.2.2.1", "MQTT-3.2.2-1");
  }
  const packet: ConnackPacket = {
    type: "connack",
    sessionPresent: (flags & 0x01) !== 0,
    reasonCode: r.u8(),
  };
  if (r.v5) {
    const properties = readProperties(r, 2);
    if (properties !== undefined) packet.properties = properties;
  }
  r.expectEnd("CONNACK");
  return packet;
}

function parsePublish(r: BodyReader, header: number): PublishPacket {
  const qos = ((header >> 1) & 3) as QoS;
  const topic = topicName(r, "topic name");
  const packetId = qos > 0 ? r.packetId("PUBLISH") : 0;
  const properties = r.v5 ? readProperties(r, 3) : undefined;
  if (topic === "" && properties?.topicAlias === undefined) {
    r.protocolError(
      r.v5 ? "PUBLISH with empty topic name and no topic alias" : "PUBLISH with empty topic name",
      "MQTT-4.7.3-1",
      "3.3.2.1",
    );
  }
  const payload = r.rest();
  const retain = (header & 0x01) !== 0;
  const dup = (header & 0x08) !== 0;
  // The packet id in the literal: added afterwards, it would give every QoS 1/2 PUBLISH a
  // property store of its own (40 bytes).
  const packet: PublishPacket = qos > 0
    ? { type: "publish", topic, payload, qos, retain, dup, packetId }
    : { type: "publish", topic, payload, qos, retain, dup };
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

/** 5.0 reason codes each packet may carry (tables in 3.4.2.1, 3.5.2.1, ...). */
const PUB_REASONS = new Set([0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]);
const REL_REASONS = new Set([0x00, 0x92]);
const SUBACK_REASONS = new Set([
  0x00,
  0x01,
  0x02,
  0x80,
  0x83,
  0x87,
  0x8f,
  0x91,
  0x97,
  0x9e,
  0xa1,
  0xa2,
]);
const UNSUBACK_REASONS = new Set([0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91]);
const AUTH_REASONS = new Set([0x00, 0x18, 0x19]);
const DISCONNECT_REASONS = new Set([
  0x00,
  0x04,
  0x80,
  0x81,
  0x82,
  0x83,
  0x87,
  0x89,
  0x8b,
  0x8d,
  0x8e,
  0x8f,
  0x90,
  0x93,
  0x94,
  0x95,
  0x96,
  0x97,
  0x98,
  0x99,
  0x9a,
  0x9b,
  0x9c,
  0x9d,
  0x9e,
  0x9f,
  0xa0,
  0xa1,
  0xa2,
]);
const ACK_RULES = ["", "", "", "", "MQTT-3.4.2-1", "MQTT-3.5.2-1", "MQTT-3.6.2-1", "MQTT-3.7.2-1"];

function checkReason(
  r: BodyReader,
  code: number,
  allowed: Set<number>,
  packet: string,
  rule: string,
) {
  if (!allowed.has(code)) {
    r.protocolError(`${packet} reason code 0x${code.toString(16)} is not defined for it`, rule);
  }
}

function parseAck(r: BodyReader, type: number): Packet {
  const name = NAMES[type];
  const packet: AckPacket<AckType> = {
    type: ACK_TYPES[type as 4 | 5 | 6 | 7],
    packetId: r.packetId(name),
  };
  // 5.0 3.4.2.1: remaining length 2 means Success without properties; 3 means no properties.
  if (r.v5 && r.remaining > 0) {
    const code = r.u8();
    checkReason(r, code, type < 6 ? PUB_REASONS : REL_REASONS, name, ACK_RULES[type]);
    packet.reasonCode = code;
    if (r.remaining > 0) {
      const properties = readProperties(r, type);
      if (properties !== undefined) packet.properties = properties;
    }
  }
  r.expectEnd(name);
  return packet as Packet;
}

function parseSubscribe(r: BodyReader): SubscribePacket {
  const packet: SubscribePacket = {
    type: "subscribe",
    packetId: r.packetId("SUBSCRIBE"),
    subscriptions: [],
  };
  if (r.v5) {
    const properties = readProperties(r, 8);
    if (properties !== undefined) packet.properties = properties;
  }
  const subscriptions = packet.subscriptions;
  while (r.remaining > 0) {
    const topic = r.utf8();
    const options = r.u8();
    const qos = options & 0x03;
    if (!r.v5) {
      if ((options & 0xfc) !== 0 || qos === 3) {
        r.malformed("SUBSCRIBE requested QoS invalid or reserved bits set", "MQTT-3-8.3-4");
      }
      subscriptions.push({ topic, qos: qos as QoS });
      continue;
    }
    if ((options & 0xc0) !== 0) {
      r.malformed("SUBSCRIBE subscription options reserved bits set", "MQTT-3.8.3-5");
    }
    if (qos === 3) r.protocolError("SUBSCRIBE maximum QoS 3", "3.8.3.1");
    const retainHandling = (options >> 4) & 0x03;
    if (retainHandling === 3) r.protocolError("SUBSCRIBE retain handling 3", "3.8.3.1");
    const noLocal = (options & 0x04) !== 0;
    if (noLocal && topic.startsWith("$share/")) {
      r.protocolError("no local set on a shared subscription", "MQTT-3.8.3-4");
    }
    const subscription: Subscription = {
      topic,
      qos: qos as QoS,
      noLocal,
      retainAsPublished: (options & 0x08) !== 0,
      retainHandling: retainHandling as 0 | 1 | 2,
    };
    subscriptions.push(subscription);
  }
  if (subscriptions.length === 0) {
    r.protocolError("SUBSCRIBE without topic filters", "MQTT-3.8.3-3", "MQTT-3.8.3-2");
  }
  return packet;
}

function parseSuback(r: BodyReader): SubackPacket {
  const packet: SubackPacket = { type: "suback", packetId: r.packetId("SUBACK"), reasonCodes: [] };
  if (r.v5) {
    const properties = readProperties(r, 9);
    if (properties !== undefined) packet.properties = properties;
  }
  const codes = packet.reasonCodes;
  while (r.remaining > 0) {
    const code = r.u8();
    if (r.v5) checkReason(r, code, SUBACK_REASONS, "SUBACK", "MQTT-3.9.3-2");
    else if (code > 2 && code !== 0x80) {
      r.protocolError("SUBACK return code reserved", "MQTT-3.9.3-2");
    }
    codes.push(code);
  }
  return packet;
}

function parseUnsubscribe(r: BodyReader): UnsubscribePacket {
  const packet: UnsubscribePacket = {
    type: "unsubscribe",
    packetId: r.packetId("UNSUBSCRIBE"),
    topics: [],
  };
  if (r.v5) {
    const properties = readProperties(r, 10);
    if (properties !== undefined) packet.properties = properties;
  }
  while (r.remaining > 0) packet.topics.push(r.utf8());
  if (packet.topics.length === 0) {
    r.protocolError("UNSUBSCRIBE without topic filters", "MQTT-3.10.3-2");
  }
  return packet;
}

function parseUnsuback(r: BodyReader): UnsubackPacket {
  const packet: UnsubackPacket = { type: "unsuback", packetId: r.packetId("UNSUBACK") };
  if (r.v5) {
    const properties = readProperties(r, 11);
    if (properties !== undefined) packet.properties = properties;
    const codes: number[] = [];
    while (r.remaining > 0) {
      const code = r.u8();
      checkReason(r, code, UNSUBACK_REASONS, "UNSUBACK", "MQTT-3.11.3-2");
      codes.push(code);
    }
    packet.reasonCodes = codes;
  }
  r.expectEnd("UNSUBACK");
  return packet;
}

/** DISCONNECT and AUTH share their 5.0 short forms: no body, or a reason code alone. */
function parseDisconnectOrAuth(
  r: BodyReader,
  type: "disconnect" | "auth",
): DisconnectPacket | AuthPacket {
  const packet: DisconnectPacket | AuthPacket = { type };
  if (r.v5 && r.remaining > 0) {
    const code = r.u8();
    if (type === "disconnect") {
      checkReason(r, code, DISCONNECT_REASONS, "DISCONNECT", "MQTT-3.14.2-1");
    } else checkReason(r, code, AUTH_REASONS, "AUTH", "MQTT-3.15.2-1");
    packet.reasonCode = code;
    if (r.remaining > 0) {
      const properties = readProperties(r, type === "disconnect" ? 14 : 15);
      if (properties !== undefined) packet.properties = properties;
    }
  }
  r.expectEnd(type.toUpperCase());
  return packet;
}
