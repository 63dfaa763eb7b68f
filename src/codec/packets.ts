/**
 * Packet model shared by the codec, the broker core and every transport.
 *
 * One shape serves MQTT 3.1 (level 3), 3.1.1 (level 4) and 5.0 (level 5): fields that only
 * exist in 5.0 (reason codes on acks, properties) are optional, so the 3.1.1 path is the
 * special case where they are absent.
 */

export type QoS = 0 | 1 | 2;
export type ProtocolVersion = 3 | 4 | 5;

export type UserProperty = [name: string, value: string];

/** MQTT 5.0 properties (spec 2.2.2.2). Unset means absent from the wire. */
export interface Properties {
  payloadFormatIndicator?: number; // 0x01
  messageExpiryInterval?: number; // 0x02
  contentType?: string; // 0x03
  responseTopic?: string; // 0x08
  correlationData?: Uint8Array; // 0x09
  subscriptionIdentifiers?: number[]; // 0x0B (several allowed in PUBLISH)
  sessionExpiryInterval?: number; // 0x11
  assignedClientIdentifier?: string; // 0x12
  serverKeepAlive?: number; // 0x13
  authenticationMethod?: string; // 0x15
  authenticationData?: Uint8Array; // 0x16
  requestProblemInformation?: number; // 0x17
  willDelayInterval?: number; // 0x18
  requestResponseInformation?: number; // 0x19
  responseInformation?: string; // 0x1A
  serverReference?: string; // 0x1C
  reasonString?: string; // 0x1F
  receiveMaximum?: number; // 0x21
  topicAliasMaximum?: number; // 0x22
  topicAlias?: number; // 0x23
  maximumQoS?: number; // 0x24
  retainAvailable?: number; // 0x25
  userProperties?: UserProperty[]; // 0x26 (repeatable, order kept)
  maximumPacketSize?: number; // 0x27
  wildcardSubscriptionAvailable?: number; // 0x28
  subscriptionIdentifiersAvailable?: number; // 0x29
  sharedSubscriptionAvailable?: number; // 0x2A
}

export interface Will {
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  properties?: Properties;
}

export interface ConnectPacket {
  type: "connect";
  /** "MQIsdp" for level 3, "MQTT" for 4 and 5. */
  protocolName: string;
  protocolVersion: ProtocolVersion;
  /** Clean Session (3.1.1) / Clean Start (5.0). */
  clean: boolean;
  keepalive: number;
  clientId: string;
  username?: string;
  password?: Uint8Array;
  will?: Will;
  properties?: Properties;
}

export interface ConnackPacket {
  type: "connack";
  sessionPresent: boolean;
  /** 3.1.1 return code (0..5) or 5.0 reason code. */
  reasonCode: number;
  properties?: Properties;
}

export interface PublishPacket {
  type: "publish";
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  dup: boolean;
  /** Present iff qos > 0. */
  packetId?: number;
  properties?: Properties;
}

export interface AckPacket<T extends "puback" | "pubrec" | "pubrel" | "pubcomp"> {
  type: T;
  packetId: number;
  /** 5.0 only; absent means 0x00 Success. */
  reasonCode?: number;
  properties?: Properties;
}
export type PubackPacket = AckPacket<"puback">;
export type PubrecPacket = AckPacket<"pubrec">;
export type PubrelPacket = AckPacket<"pubrel">;
export type PubcompPacket = AckPacket<"pubcomp">;

export interface Subscription {
  topic: string;
  qos: QoS;
  /** 5.0 subscription options; false/0 for 3.1.1. */
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: 0 | 1 | 2;
}

export interface SubscribePacket {
  type: "subscribe";
  packetId: number;
  subscriptions: Subscription[];
  properties?: Properties;
}

export interface SubackPacket {
  type: "suback";
  packetId: number;
  /** Granted QoS (0..2) or failure (0x80 in 3.1.1, 5.0 reason codes). */
  reasonCodes: number[];
  properties?: Properties;
}

export interface UnsubscribePacket {
  type: "unsubscribe";
  packetId: number;
  topics: string[];
  properties?: Properties;
}

export interface UnsubackPacket {
  type: "unsuback";
  packetId: number;
  /** 5.0 only. */
  reasonCodes?: number[];
  properties?: Properties;
}

export interface PingreqPacket {
  type: "pingreq";
}
export interface PingrespPacket {
  type: "pingresp";
}

export interface DisconnectPacket {
  type: "disconnect";
  /** 5.0 only; absent means 0x00 Normal disconnection. */
  reasonCode?: number;
  properties?: Properties;
}

/** 5.0 only. */
export interface AuthPacket {
  type: "auth";
  reasonCode?: number;
  properties?: Properties;
}

export type Packet =
  | ConnectPacket
  | ConnackPacket
  | PublishPacket
  | PubackPacket
  | PubrecPacket
  | PubrelPacket
  | PubcompPacket
  | SubscribePacket
  | SubackPacket
  | UnsubscribePacket
  | UnsubackPacket
  | PingreqPacket
  | PingrespPacket
  | DisconnectPacket
  | AuthPacket;

export type PacketType = Packet["type"];

/** Control packet type numbers (fixed header bits 7..4). */
export const PACKET_TYPE_CODES: Record<PacketType, number> = {
  connect: 1,
  connack: 2,
  publish: 3,
  puback: 4,
  pubrec: 5,
  pubrel: 6,
  pubcomp: 7,
  subscribe: 8,
  suback: 9,
  unsubscribe: 10,
  unsuback: 11,
  pingreq: 12,
  pingresp: 13,
  disconnect: 14,
  auth: 15,
};
