/** How an MQTT message or client event becomes a Kafka record. */
import { Buffer } from "node:buffer";
import type { ClientInfo } from "../../broker/model.ts";
import type { StoredMessage } from "../../broker/model.ts";
import { jsonValueLength } from "./json_value.ts";
import { mqttTopicOf, type TailRef, writeMessageTail } from "./record_arena.ts";
import { type HeaderValue, putPropertyHeaders } from "./properties.ts";
import type { RecordContext } from "./record_context.ts";

export type { RecordContext };

/** A record as handed to kafkajs (its `Message` shape), plus where it goes. */
export interface OutRecord {
  /** Never set: tells an OutRecord from a MessageRef. */
  chunk?: undefined;
  topic: string;
  key: string | null;
  value: Buffer;
  /** A repeated header is an array of its values, in order (kafkajs's form). */
  headers: Record<string, HeaderValue>;
  /** ms since epoch, as a decimal string (kafkajs's form). */
  timestamp: string;
  /** Approximate size for the buffer and request limits. */
  bytes: number;
}

/**
 * A message without 5.0 properties (nearly all of them), as queued: its record (the same key,
 * value, headers and timestamp messageRecord gives) already written in Kafka's encoding into a
 * shared chunk (record_arena.ts), so that nothing of the message itself is kept.
 */
export interface MessageRef extends TailRef {
  /** The Kafka topic. */
  topic: string;
  /** ms since epoch. */
  timestamp: number;
  /** As messageRecord's `bytes`, to the byte. */
  bytes: number;
}

/** What the egress queues: a record ready to send, or a message written out only when sent. */
export type BridgeRecord = OutRecord | MessageRef;

/** Per-record overhead of the Kafka record format, roughly, so tiny records still count. */
const RECORD_OVERHEAD = 70;

/**
 * Sum of the fixed header names' lengths plus 2 per header (finish() counts name + value + 2),
 * for the seven fixed headers of messageRecord.
 */
const FIXED_HEADERS_BYTES = "mqtt.topic".length + "mqtt.qos".length + "mqtt.retain".length +
  "mqtt.client_id".length + "mqttwk.node_id".length + "mqttwk.timestamp".length +
  "mqttwk.message_id".length + 7 * 2;

/**
 * The message as a MessageRef when it can be one (no 5.0 properties), else null and the caller
 * uses messageRecord.
 */
export function messageRef(
  msg: StoredMessage,
  clientId: string,
  kafkaTopic: string,
  ctx: RecordContext,
): MessageRef | null {
  if (msg.properties !== undefined) return null;
  const valueLength = ctx.format === "raw"
    ? msg.payload.byteLength
    : jsonValueLength(msg, clientId, ctx);
  const at = msg.createdAt;
  const keyLength = ctx.keyMode === "topic"
    ? msg.topic.length
    : ctx.keyMode === "client-id"
    ? clientId.length
    : 0;
  const bytes = RECORD_OVERHEAD + valueLength + keyLength + FIXED_HEADERS_BYTES +
    msg.topic.length + 1 + (msg.retain ? 4 : 5) + clientId.length + ctx.nodeId.length +
    (at >= 1e12 && at < 1e13 ? 13 : String(at).length) + msg.id.length;
  let ref = spareRefs.pop();
  if (ref === undefined) {
    ref = { chunk: EMPTY, at: 0, length: 0, topic: kafkaTopic, timestamp: at, bytes };
  } else {
    ref.topic = kafkaTopic;
    ref.timestamp = at;
    ref.bytes = bytes;
  }
  writeMessageTail(msg, clientId, ctx, valueLength, ref);
  return ref;
}

const EMPTY = new Uint8Array();

/**
 * MessageRefs handed back by the egress, for the next messages. A record lives for Kafka's round
 * trip and the queue before it (a few ms under a fan-in): as long as the young generation takes to
 * fill, so V8 decided to allocate them straight in the old generation, where only full collections
 * free them (one every ~330 ms at 400k records/s, a fifth of the thread in the collector).
 */
const spareRefs: MessageRef[] = [];
/** More than the records in flight under a QoS 1 fan-in at full speed. */
const MAX_SPARE_REFS = 16_384;

/**
 * Hands a record back once nothing refers to it any more (Kafka has it, or refused it for good,
 * and its publisher was told): a MessageRef is then reused by a later message. The egress is the
 * only caller; a ref kept after this would read another message's record.
 */
export function releaseRecord(r: BridgeRecord): void {
  if (r.chunk === undefined || spareRefs.length >= MAX_SPARE_REFS) return;
  // The chunk is not kept alive by a spare.
  r.chunk = EMPTY;
  spareRefs.push(r);
}

/** How a log line names a record: its MQTT topic, or "event". */
export function recordLabel(r: BridgeRecord): string {
  if (r.chunk !== undefined) return mqttTopicOf(r);
  return String(r.headers["mqtt.topic"] ?? "event");
}

export function messageRecord(
  msg: StoredMessage,
  from: ClientInfo,
  kafkaTopic: string,
  ctx: RecordContext,
): OutRecord {
  const key = ctx.keyMode === "topic"
    ? msg.topic
    : ctx.keyMode === "client-id"
    ? from.clientId
    : null;
  const value = ctx.format === "raw"
    ? Buffer.from(msg.payload.buffer, msg.payload.byteOffset, msg.payload.byteLength)
    : Buffer.from(mqttwkJson(msg, from.clientId, ctx));
  const headers: Record<string, HeaderValue> = {
    "mqtt.topic": msg.topic,
    "mqtt.qos": String(msg.qos),
    "mqtt.retain": String(msg.retain),
    "mqtt.client_id": from.clientId,
    "mqttwk.node_id": ctx.nodeId,
    "mqttwk.timestamp": String(msg.createdAt),
    "mqttwk.message_id": msg.id,
  };
  // 5.0 properties follow the fixed headers (properties.ts); 3.1.1 messages have none.
  if (msg.properties !== undefined) putPropertyHeaders(msg.properties, headers);
  return finish(kafkaTopic, key, value, headers, msg.createdAt);
}

/**
 * The original MqttWk's value, field for field and in its (alphabetical) order, so consumers
 * written against it keep working. The retain flag is the real one; the original lost it.
 */
export function mqttwkJson(msg: StoredMessage, clientId: string, ctx: RecordContext): string {
  const p = msg.payload;
  return JSON.stringify({
    brokerId: ctx.brokerId,
    clientId,
    dup: msg.dup ?? false,
    messageBytes: Array.from(new Int8Array(p.buffer, p.byteOffset, p.byteLength)),
    mqttQoS: msg.qos,
    processId: ctx.processId,
    retain: msg.retain,
    topic: msg.topic,
  });
}

export type ClientEvent =
  | { event: "connected" }
  | { event: "disconnected"; reason: string }
  | { event: "subscribed"; filter: string; qos: number }
  | { event: "unsubscribed"; filter: string };

export function eventRecord(
  client: ClientInfo,
  e: ClientEvent,
  kafkaTopic: string,
  ctx: RecordContext,
): OutRecord {
  const now = Date.now();
  const value = Buffer.from(JSON.stringify({
    ...e,
    clientId: client.clientId,
    username: client.username ?? null,
    remoteAddress: client.remoteAddress,
    transport: client.transport,
    protocolVersion: client.protocolVersion,
    brokerId: ctx.brokerId,
    nodeId: ctx.nodeId,
    timestamp: now,
  }));
  const headers = { "mqtt.client_id": client.clientId, "mqttwk.node_id": ctx.nodeId };
  return finish(kafkaTopic, client.clientId, value, headers, now);
}

function finish(
  topic: string,
  key: string | null,
  value: Buffer,
  headers: Record<string, HeaderValue>,
  at: number,
): OutRecord {
  let bytes = RECORD_OVERHEAD + value.byteLength + (key?.length ?? 0);
  for (const k in headers) {
    const v = headers[k];
    if (!Array.isArray(v)) bytes += k.length + v.length + 2;
    else for (const one of v) bytes += k.length + one.length + 2;
  }
  return { topic, key, value, headers, timestamp: String(at), bytes };
}
