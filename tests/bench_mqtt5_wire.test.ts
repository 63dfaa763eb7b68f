/**
 * The bench's own MQTT 5.0 encoder and parser (bench/mqtt5_wire.ts) against the broker's codec:
 * what the load generator sends must decode as the 5.0 packets it means, and it must read the
 * broker's 5.0 packets (properties, reason codes, topic aliases) correctly, in any chunking.
 * A generator that got this wrong would measure something else than 5.0 traffic.
 */
import assert from "node:assert/strict";
import { Decoder, encode, type Packet } from "../src/codec/mod.ts";
import {
  encodeConnect5,
  encodeSubscribe5,
  Packet5Parser,
  type Packet5Sink,
  Publish5Batcher,
} from "../bench/mqtt5_wire.ts";
import { readTimestamp } from "../bench/mqtt_wire.ts";

function decode5(bytes: Uint8Array): Packet[] {
  const out: Packet[] = [];
  new Decoder({ protocolVersion: 5 }).push(bytes, (p) => out.push(p));
  return out;
}

/** Records what the parser reports. */
class Sink implements Packet5Sink {
  connacks: number[] = [];
  subacks: number[][] = [];
  publishes: { ts: number; len: number; qos: number; pid: number }[] = [];
  pubacks: number[] = [];
  failures: string[] = [];
  onConnack(rc: number): void {
    this.connacks.push(rc);
  }
  onSuback(_pid: number, codes: number[]): void {
    this.subacks.push(codes);
  }
  onPublish(buf: Uint8Array, off: number, len: number, qos: number, pid: number): void {
    this.publishes.push({ ts: readTimestamp(buf, off), len, qos, pid });
  }
  onPuback(pid: number): void {
    this.pubacks.push(pid);
  }
  onOther(_type: number): void {}
  onFailure(what: string): void {
    this.failures.push(what);
  }
}

/** Feeds `bytes` one byte at a time (the worst chunking) and whole, with the same result. */
function parseBothWays(bytes: Uint8Array, aliasMax: number): { sink: Sink; parser: Packet5Parser } {
  const whole = new Sink();
  const wp = new Packet5Parser(aliasMax);
  wp.feed(bytes, whole);
  const bytewise = new Sink();
  const bp = new Packet5Parser(aliasMax);
  for (let i = 0; i < bytes.length; i++) bp.feed(bytes.subarray(i, i + 1), bytewise);
  assert.deepEqual(bytewise, whole);
  assert.equal(bp.aliasedPublishes, wp.aliasedPublishes);
  assert.equal(bp.brokerTopicAliasMaximum, wp.brokerTopicAliasMaximum);
  return { sink: whole, parser: wp };
}

function payloadAt(ts: number, size = 16): Uint8Array {
  const p = new Uint8Array(size);
  new DataView(p.buffer).setFloat64(0, ts, true);
  return p;
}

const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

Deno.test("bench 5.0 CONNECT: level 5 with Session Expiry, Receive Maximum and Topic Alias Maximum (3.1.2.11)", () => {
  const [p] = decode5(encodeConnect5("gen-1", {
    clean: false,
    sessionExpiry: 0xffffffff,
    receiveMaximum: 1000,
    topicAliasMaximum: 10,
  }));
  assert.equal(p.type, "connect");
  if (p.type !== "connect") return;
  assert.equal(p.protocolVersion, 5);
  assert.equal(p.clean, false);
  assert.equal(p.clientId, "gen-1");
  assert.equal(p.properties?.sessionExpiryInterval, 0xffffffff);
  assert.equal(p.properties?.receiveMaximum, 1000);
  assert.equal(p.properties?.topicAliasMaximum, 10);
});

Deno.test("bench 5.0 CONNECT with clean start and no options carries no properties", () => {
  const [p] = decode5(encodeConnect5("gen-2"));
  assert.equal(p.type, "connect");
  if (p.type !== "connect") return;
  assert.equal(p.clean, true);
  assert.equal(p.properties?.sessionExpiryInterval, undefined);
  assert.equal(p.properties?.topicAliasMaximum, undefined);
});

Deno.test("bench 5.0 SUBSCRIBE: property length, then the filter and its QoS (3.8.2, 3.8.3)", () => {
  const [p] = decode5(encodeSubscribe5(7, [{ topic: "bench/fanin/+", qos: 1 }]));
  assert.equal(p.type, "subscribe");
  if (p.type !== "subscribe") return;
  assert.equal(p.packetId, 7);
  assert.deepEqual(p.subscriptions.map((s) => [s.topic, s.qos]), [["bench/fanin/+", 1]]);
});

Deno.test("bench 5.0 PUBLISH without alias: full topic, empty properties, stamped payload", () => {
  const b = new Publish5Batcher("bench/p2p/3", 1, 16, 8);
  const ps = decode5(b.fill(3, 1234.5));
  assert.equal(ps.length, 3);
  ps.forEach((p, i) => {
    assert.equal(p.type, "publish");
    if (p.type !== "publish") return;
    assert.equal(p.topic, "bench/p2p/3");
    assert.equal(p.qos, 1);
    assert.equal(p.packetId, i + 1);
    assert.equal(p.properties?.topicAlias, undefined);
    assert.equal(p.payload.length, 16);
    assert.equal(readTimestamp(p.payload, 0), 1234.5);
  });
});

Deno.test("bench 5.0 PUBLISH with alias: the topic once with the alias, then the alias alone (3.3.2.3.4)", () => {
  const b = new Publish5Batcher("bench/p2p/9", 0, 16, 4, 1);
  const first = decode5(b.fill(3, 1));
  const later = decode5(b.fill(4, 2));
  const seen = [...first, ...later].map((p) =>
    p.type === "publish" ? [p.topic, p.properties?.topicAlias] : []
  );
  assert.deepEqual(seen, [
    ["bench/p2p/9", 1],
    ["", 1],
    ["", 1],
    ["", 1],
    ["", 1],
    ["", 1],
    ["", 1],
  ]);
});

Deno.test("bench 5.0 PUBLISH with alias at QoS 1: packet ids continue across the first and later batches", () => {
  const b = new Publish5Batcher("t", 1, 16, 4, 2);
  const ids = [...decode5(b.fill(2, 1)), ...decode5(b.fill(2, 1))]
    .map((p) => p.type === "publish" ? p.packetId : -1);
  assert.deepEqual(ids, [1, 2, 3, 4]);
});

Deno.test("bench 5.0 parser: CONNACK properties give the broker's Topic Alias Maximum (3.2.2.3.8)", () => {
  const connack = encode({
    type: "connack",
    sessionPresent: false,
    reasonCode: 0,
    properties: { receiveMaximum: 100, topicAliasMaximum: 7, assignedClientIdentifier: "x" },
  }, 5);
  const { sink, parser } = parseBothWays(connack, 0);
  assert.deepEqual(sink.connacks, [0]);
  assert.equal(parser.brokerTopicAliasMaximum, 7);
});

Deno.test("bench 5.0 parser: the broker's aliases resolve, payload found after the properties [MQTT-3.3.2-10]", () => {
  const pub = (topic: string, alias: number | undefined, ts: number, pid?: number) =>
    encode({
      type: "publish",
      topic,
      payload: payloadAt(ts),
      qos: pid ? 1 : 0,
      retain: false,
      dup: false,
      packetId: pid,
      properties: alias ? { topicAlias: alias, userProperties: [["k", "v"]] } : undefined,
    }, 5);
  const bytes = concat(
    pub("bench/fanout", 3, 1),
    pub("", 3, 2),
    pub("", 3, 3, 42),
    pub("other/topic", undefined, 4),
  );
  const { sink, parser } = parseBothWays(bytes, 10);
  assert.deepEqual(sink.failures, []);
  assert.deepEqual(sink.publishes.map((p) => [p.ts, p.len, p.qos, p.pid]), [
    [1, 16, 0, 0],
    [2, 16, 0, 0],
    [3, 16, 1, 42],
    [4, 16, 0, 0],
  ]);
  assert.equal(parser.aliasedPublishes, 2);
});

Deno.test("bench 5.0 parser: an alias never set, 0, or above our maximum is reported [MQTT-3.3.2-8] [MQTT-3.3.2-11]", () => {
  const pub = (topic: string, alias: number) =>
    encode({
      type: "publish",
      topic,
      payload: payloadAt(1),
      qos: 0,
      retain: false,
      dup: false,
      properties: { topicAlias: alias },
    }, 5);
  for (
    const [bytes, why] of [
      [pub("", 2), /never set/],
      [pub("t", 11), /topic alias 11/],
      [pub("t", 0), /topic alias 0/],
    ] as const
  ) {
    const { sink, parser } = parseBothWays(bytes, 10);
    assert.equal(sink.failures.length, 1);
    assert.match(sink.failures[0], why);
    assert.equal(parser.aliasedPublishes, 0);
  }
});

Deno.test("bench 5.0 parser: PUBACK reason codes, 0x10 is a success, 0x80 and up a failure (3.4.2.1)", () => {
  const ack = (packetId: number, reasonCode: number) =>
    encode({ type: "puback", packetId, reasonCode, properties: { reasonString: "why" } }, 5);
  const { sink } = parseBothWays(concat(ack(1, 0x10), ack(2, 0x87), ack(3, 0)), 0);
  assert.deepEqual(sink.pubacks, [1, 2, 3]);
  assert.deepEqual(sink.failures, ["PUBACK reason code 0x87"]);
});

Deno.test("bench 5.0 parser: SUBACK reason codes follow the properties (3.9.2.1, 3.9.3)", () => {
  const suback = encode({
    type: "suback",
    packetId: 1,
    reasonCodes: [0x01, 0x87],
    properties: { reasonString: "no" },
  }, 5);
  const { sink } = parseBothWays(suback, 0);
  assert.deepEqual(sink.subacks, [[0x01, 0x87]]);
});

Deno.test("bench 5.0 parser: a broker DISCONNECT is reported with its reason code (3.14.2.1)", () => {
  const d = encode({ type: "disconnect", reasonCode: 0x8b }, 5);
  const { sink } = parseBothWays(d, 0);
  assert.deepEqual(sink.failures, ["broker sent DISCONNECT, reason code 0x8b"]);
});
