import assert from "node:assert/strict";
import type { ClientInfo } from "../../src/broker/model.ts";
import type { StoredMessage } from "../../src/broker/model.ts";
import {
  eventRecord,
  messageRecord,
  mqttwkJson,
  type RecordContext,
} from "../../src/bridge/kafka/records.ts";

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
