/** Valid packets of every type for each protocol level, used by round-trip and stream tests. */
import type { Packet, ProtocolVersion } from "../../src/codec/mod.ts";

const bytes = (...b: number[]) => Uint8Array.from(b);
const users: [string, string][] = [["k", "v"], ["ünïcødé", "🚀 rocket"], ["k", "again"]];

function connects(level: ProtocolVersion): Packet[] {
  const protocolName = level === 3 ? "MQIsdp" : "MQTT";
  const base = { type: "connect", protocolName, protocolVersion: level } as const;
  const list: Packet[] = [
    { ...base, clean: true, keepalive: 60, clientId: "minimal" },
    { ...base, clean: false, keepalive: 0, clientId: level === 3 ? "x" : "" },
    {
      ...base,
      clean: true,
      keepalive: 65535,
      clientId: "with-will",
      will: { topic: "last/will", payload: bytes(1, 2, 3), qos: 2, retain: true },
    },
    {
      ...base,
      clean: true,
      keepalive: 30,
      clientId: "with-creds",
      username: "user\u00e9",
      password: bytes(0, 255, 7),
    },
    {
      ...base,
      clean: false,
      keepalive: 10,
      clientId: "everything",
      will: { topic: "w", payload: bytes(), qos: 1, retain: false },
      username: "u",
      password: bytes(),
    },
    { ...base, clean: true, keepalive: 1, clientId: "user-only", username: "" },
  ];
  if (level === 5) {
    list.push({
      ...base,
      clean: true,
      keepalive: 60,
      clientId: "props",
      properties: {
        sessionExpiryInterval: 0xffffffff,
        authenticationMethod: "SCRAM-SHA-1",
        authenticationData: bytes(9, 8, 7),
        requestProblemInformation: 0,
        requestResponseInformation: 1,
        receiveMaximum: 65535,
        topicAliasMaximum: 10,
        userProperties: users,
        maximumPacketSize: 1024,
      },
      will: {
        topic: "will/5",
        payload: bytes(42),
        qos: 1,
        retain: true,
        properties: {
          payloadFormatIndicator: 1,
          messageExpiryInterval: 3600,
          contentType: "text/plain",
          responseTopic: "reply/here",
          correlationData: bytes(1, 2),
          willDelayInterval: 5,
          userProperties: [["w", "p"]],
        },
      },
      username: "alice",
      password: bytes(112, 119),
    });
    // 5.0 allows a password without a user name.
    list.push({ ...base, clean: true, keepalive: 5, clientId: "pw", password: bytes(1) });
  }
  return list;
}

function publishes(level: ProtocolVersion): Packet[] {
  const payload = new TextEncoder().encode("hello");
  const list: Packet[] = [
    { type: "publish", topic: "a/b", payload, qos: 0, retain: false, dup: false },
    { type: "publish", topic: "a/b", payload: bytes(), qos: 0, retain: true, dup: false },
    { type: "publish", topic: "q/1", payload, qos: 1, retain: false, dup: true, packetId: 1 },
    { type: "publish", topic: "q/2", payload, qos: 2, retain: true, dup: true, packetId: 65535 },
    {
      type: "publish",
      topic: "\uFEFFbom/kept/ünï/🚀",
      payload: new Uint8Array(300).map((_, i) => i & 0xff),
      qos: 1,
      retain: false,
      dup: false,
      packetId: 77,
    },
    {
      type: "publish",
      topic: "x".repeat(200),
      payload: new Uint8Array(20_000).fill(7),
      qos: 0,
      retain: false,
      dup: false,
    },
  ];
  if (level === 5) {
    list.push({
      type: "publish",
      topic: "props",
      payload,
      qos: 2,
      retain: false,
      dup: false,
      packetId: 9,
      properties: {
        payloadFormatIndicator: 1,
        messageExpiryInterval: 120,
        contentType: "application/json",
        responseTopic: "resp/topic",
        correlationData: bytes(0xde, 0xad),
        subscriptionIdentifiers: [1, 268_435_455, 300],
        topicAlias: 3,
        userProperties: users,
      },
    });
    // With a topic alias the topic name may be empty.
    list.push({
      type: "publish",
      topic: "",
      payload,
      qos: 0,
      retain: false,
      dup: false,
      properties: { topicAlias: 3 },
    });
  }
  return list;
}

function acks(level: ProtocolVersion): Packet[] {
  const list: Packet[] = [];
  for (const type of ["puback", "pubrec", "pubrel", "pubcomp"] as const) {
    list.push({ type, packetId: 1 }, { type, packetId: 65535 });
    if (level === 5) {
      const failure = type === "pubrel" || type === "pubcomp" ? 0x92 : 0x80;
      list.push(
        { type, packetId: 2, reasonCode: failure },
        {
          type,
          packetId: 3,
          reasonCode: 0,
          properties: { reasonString: "why not", userProperties: users },
        },
        { type, packetId: 4, reasonCode: failure, properties: { reasonString: "nope" } },
      );
    }
  }
  return list;
}

function subscriptions(level: ProtocolVersion): Packet[] {
  if (level !== 5) {
    return [
      { type: "subscribe", packetId: 10, subscriptions: [{ topic: "a/+", qos: 0 }] },
      {
        type: "subscribe",
        packetId: 11,
        subscriptions: [{ topic: "#", qos: 2 }, { topic: "x/y", qos: 1 }],
      },
      { type: "suback", packetId: 10, reasonCodes: [0] },
      { type: "suback", packetId: 11, reasonCodes: [2, 1, 0x80] },
      { type: "unsubscribe", packetId: 12, topics: ["a/+"] },
      { type: "unsubscribe", packetId: 13, topics: ["#", "x/y", "ü"] },
      { type: "unsuback", packetId: 12 },
    ];
  }
  return [
    {
      type: "subscribe",
      packetId: 10,
      subscriptions: [{
        topic: "a/+",
        qos: 0,
        noLocal: false,
        retainAsPublished: false,
        retainHandling: 0,
      }],
    },
    {
      type: "subscribe",
      packetId: 11,
      subscriptions: [
        { topic: "#", qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2 },
        { topic: "$share/g/x", qos: 1, noLocal: false, retainAsPublished: true, retainHandling: 1 },
      ],
      properties: { subscriptionIdentifiers: [42], userProperties: users },
    },
    { type: "suback", packetId: 10, reasonCodes: [0] },
    {
      type: "suback",
      packetId: 11,
      reasonCodes: [2, 1, 0x80, 0xa2],
      properties: { reasonString: "partly", userProperties: users },
    },
    { type: "unsubscribe", packetId: 12, topics: ["a/+"] },
    {
      type: "unsubscribe",
      packetId: 13,
      topics: ["#", "x/y"],
      properties: { userProperties: users },
    },
    { type: "unsuback", packetId: 12, reasonCodes: [0] },
    {
      type: "unsuback",
      packetId: 13,
      reasonCodes: [0x11, 0],
      properties: { reasonString: "gone", userProperties: users },
    },
  ];
}

function control(level: ProtocolVersion): Packet[] {
  const list: Packet[] = [
    { type: "connack", sessionPresent: false, reasonCode: 0 },
    { type: "connack", sessionPresent: false, reasonCode: level === 5 ? 0x84 : 1 },
    { type: "pingreq" },
    { type: "pingresp" },
    { type: "disconnect" },
  ];
  if (level !== 3) list.push({ type: "connack", sessionPresent: true, reasonCode: 0 });
  if (level === 5) {
    list.push(
      {
        type: "connack",
        sessionPresent: true,
        reasonCode: 0,
        properties: {
          sessionExpiryInterval: 100,
          assignedClientIdentifier: "auto-1",
          serverKeepAlive: 30,
          authenticationMethod: "m",
          authenticationData: bytes(5),
          responseInformation: "resp/",
          serverReference: "other:1883",
          reasonString: "welcome",
          receiveMaximum: 100,
          topicAliasMaximum: 16,
          maximumQoS: 1,
          retainAvailable: 0,
          userProperties: users,
          maximumPacketSize: 65536,
          wildcardSubscriptionAvailable: 1,
          subscriptionIdentifiersAvailable: 0,
          sharedSubscriptionAvailable: 1,
        },
      },
      { type: "disconnect", reasonCode: 0x04 },
      {
        type: "disconnect",
        reasonCode: 0x9c,
        properties: {
          sessionExpiryInterval: 0,
          serverReference: "elsewhere",
          reasonString: "moving",
          userProperties: users,
        },
      },
      { type: "auth" },
      { type: "auth", reasonCode: 0x18 },
      {
        type: "auth",
        reasonCode: 0x19,
        properties: {
          authenticationMethod: "SCRAM-SHA-256",
          authenticationData: bytes(1, 2, 3, 4),
          reasonString: "again",
          userProperties: users,
        },
      },
    );
  }
  return list;
}

/** Every fixture for `level`, CONNECTs first (they set the decoder's level). */
export function fixtures(level: ProtocolVersion): Packet[] {
  return [
    ...connects(level),
    ...publishes(level),
    ...acks(level),
    ...subscriptions(level),
    ...control(level),
  ];
}

export const LEVELS: ProtocolVersion[] = [3, 4, 5];
