import assert from "node:assert/strict";
import type { ClientInfo } from "../../src/broker/model.ts";
import type { StoredMessage } from "../../src/broker/model.ts";
import {
  eventRecord,
  messageRecord,
  mqttwkJson,
  type RecordContext,
} from "../../src/bridge/kafka/records.ts";
import { propertiesFromHeaders } from "../../src/bridge/kafka/properties.ts";
import { Buffer } from "node:buffer";

const client: ClientInfo = {
  clientId: "pc-web",
  remoteAddress: "127.0.0.1:5000",
  transport: "tcp",
  protocolVersion: 4,
};

function message(
  topic: string,
  payload: number[],
  over: Partial<StoredMessage> = {},
): StoredMessage {
  return {
    id: "node-1-7",
    topic,
    payload: new Uint8Array(payload),
    qos: 0,
    retain: false,
    createdAt: 1_700_000_000_123,
    origin: "pc-web",
    ...over,
  };
}

const ctx = (over: Partial<RecordContext> = {}): RecordContext => ({
  keyMode: "topic",
  format: "raw",
  brokerId: "mqttwk",
  nodeId: "node-1",
  processId: "4242",
  ...over,
});

Deno.test("the mqttwk-json value is the original broker's JSON, byte for byte", () => {
  const msg = message("/topic/mqttwk", [104, 101, 108, 108, 111]);
  assert.equal(
    mqttwkJson(msg, "pc-web", ctx()),
    '{"brokerId":"mqttwk","clientId":"pc-web","dup":false,"messageBytes":[104,101,108,108,111],' +
      '"mqttQoS":0,"processId":"4242","retain":false,"topic":"/topic/mqttwk"}',
  );
});

Deno.test("mqttwk-json writes payload bytes as signed 8-bit numbers and keeps the retain flag", () => {
  const msg = message("t", [0, 127, 128, 255], { qos: 1, retain: true });
  const v = JSON.parse(mqttwkJson(msg, "c", ctx()));
  assert.deepEqual(v.messageBytes, [0, 127, -128, -1]);
  assert.equal(v.retain, true);
  assert.equal(v.mqttQoS, 1);
});

Deno.test("a raw record carries the payload unchanged and the MQTT metadata as headers", () => {
  const payload = new Uint8Array([9, 0, 255, 1, 2]).subarray(1, 4);
  const msg = { ...message("a/b", []), payload, qos: 2 as const, retain: true };
  const r = messageRecord(msg, client, "out", ctx());
  assert.equal(r.topic, "out");
  assert.equal(r.key, "a/b");
  assert.deepEqual([...r.value], [0, 255, 1]);
  assert.deepEqual(r.headers, {
    "mqtt.topic": "a/b",
    "mqtt.qos": "2",
    "mqtt.retain": "true",
    "mqtt.client_id": "pc-web",
    "mqttwk.node_id": "node-1",
    "mqttwk.timestamp": "1700000000123",
    "mqttwk.message_id": "node-1-7",
  });
  assert.equal(r.timestamp, "1700000000123");
  assert.ok(r.bytes > 3 + 3);
});

Deno.test("the record key follows the key option", () => {
  const msg = message("a/b", [1]);
  assert.equal(messageRecord(msg, client, "o", ctx({ keyMode: "topic" })).key, "a/b");
  assert.equal(messageRecord(msg, client, "o", ctx({ keyMode: "client-id" })).key, "pc-web");
  assert.equal(messageRecord(msg, client, "o", ctx({ keyMode: "none" })).key, null);
});

Deno.test("client events are JSON records keyed by client id", () => {
  const r = eventRecord(client, { event: "subscribed", filter: "a/#", qos: 1 }, "ev", ctx());
  assert.equal(r.key, "pc-web");
  const v = JSON.parse(r.value.toString());
  assert.equal(v.event, "subscribed");
  assert.equal(v.filter, "a/#");
  assert.equal(v.qos, 1);
  assert.equal(v.clientId, "pc-web");
  assert.equal(v.nodeId, "node-1");
  assert.equal(typeof v.timestamp, "number");
});

const FIXED = [
  "mqtt.topic",
  "mqtt.qos",
  "mqtt.retain",
  "mqtt.client_id",
  "mqttwk.node_id",
  "mqttwk.timestamp",
  "mqttwk.message_id",
];

Deno.test("a message without properties (3.1.1) gets only the fixed headers, as before", () => {
  const r = messageRecord(message("a/b", [1]), client, "out", ctx());
  assert.deepEqual(Object.keys(r.headers), FIXED);
});

Deno.test("5.0 properties become headers after the fixed ones; user properties in order per name [MQTT-3.3.2-18]", () => {
  const msg = message("a/b", [104, 105], {
    properties: {
      payloadFormatIndicator: 1,
      messageExpiryInterval: 30,
      contentType: "application/json",
      responseTopic: "reply/to",
      correlationData: new Uint8Array([0, 1, 2, 254, 255]),
      userProperties: [["region", "eu"], ["trace", "t1"], ["region", "us"], ["x y", ""]],
    },
  });
  const r = messageRecord(msg, client, "out", ctx());
  assert.deepEqual(Object.keys(r.headers), [
    ...FIXED,
    "mqtt.payload_format_indicator",
    "mqtt.message_expiry_interval",
    "mqtt.content_type",
    "mqtt.response_topic",
    "mqtt.correlation_data",
    "mqtt.user.region",
    "mqtt.user.trace",
    "mqtt.user.x y",
  ]);
  assert.equal(r.headers["mqtt.payload_format_indicator"], "1");
  assert.equal(r.headers["mqtt.message_expiry_interval"], "30");
  assert.equal(r.headers["mqtt.content_type"], "application/json");
  assert.equal(r.headers["mqtt.response_topic"], "reply/to");
  const cd = r.headers["mqtt.correlation_data"];
  assert.ok(Buffer.isBuffer(cd), "bytes go to kafkajs as a Buffer, written as they are");
  assert.deepEqual([...cd as Buffer], [0, 1, 2, 254, 255]);
  assert.deepEqual(
    r.headers["mqtt.user.region"],
    ["eu", "us"],
    "a repeated name keeps both, in order",
  );
  assert.equal(r.headers["mqtt.user.trace"], "t1");
  assert.equal(r.headers["mqtt.user.x y"], "");
  // The record format itself is unchanged: the value is still the payload.
  assert.deepEqual([...r.value], [104, 105]);
});

Deno.test("ingress: headers as kafkajs gives them become the message's 5.0 properties", () => {
  const headers = {
    "mqtt.topic": Buffer.from("t"),
    "mqtt.user.a": [Buffer.from("1"), Buffer.from("3")],
    "mqtt.user.b": Buffer.from("2"),
    "mqtt.content_type": Buffer.from("text/plain"),
    "mqtt.response_topic": Buffer.from("r/1"),
    "mqtt.correlation_data": Buffer.from([0, 255]),
    "mqtt.payload_format_indicator": Buffer.from("1"),
    "mqtt.message_expiry_interval": Buffer.from("60"),
    "other": Buffer.from("ignored"),
  };
  assert.deepEqual(propertiesFromHeaders(headers, new TextEncoder().encode("hi")), {
    userProperties: [["a", "1"], ["a", "3"], ["b", "2"]],
    contentType: "text/plain",
    responseTopic: "r/1",
    correlationData: new Uint8Array([0, 255]),
    payloadFormatIndicator: 1,
    messageExpiryInterval: 60,
  });
});

Deno.test("ingress: no property headers, no properties; unusable values are left out [3.3.2.3.2]", () => {
  assert.equal(propertiesFromHeaders(undefined, new Uint8Array()), undefined);
  assert.equal(propertiesFromHeaders({ "mqtt.topic": "t" }, new Uint8Array()), undefined);
  assert.equal(
    propertiesFromHeaders({
      // 1 promises UTF-8: a payload that is not cannot keep it (0x99 for a client's PUBLISH).
      "mqtt.payload_format_indicator": "1",
      "mqtt.message_expiry_interval": "soon",
    }, new Uint8Array([0xff, 0xfe])),
    undefined,
  );
  assert.deepEqual(
    propertiesFromHeaders({ "mqtt.message_expiry_interval": "4294967296" }, new Uint8Array()),
    undefined,
    "above the four-byte maximum",
  );
});

Deno.test("egress headers read back by ingress give the same properties (per-name order)", () => {
  const properties = {
    payloadFormatIndicator: 0,
    messageExpiryInterval: 5,
    contentType: "c",
    responseTopic: "r",
    correlationData: new Uint8Array([7]),
    userProperties: [["k", "v1"], ["k", "v2"], ["z", "1"]] as [string, string][],
  };
  const r = messageRecord(message("a", [], { properties }), client, "out", ctx());
  assert.deepEqual(propertiesFromHeaders(r.headers, new Uint8Array()), properties);
});
