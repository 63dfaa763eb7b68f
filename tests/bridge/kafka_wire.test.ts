/**
 * What crosses to the producer thread and where records land: the packed batch gives back every
 * record unchanged, and the partitioner agrees with kafkajs's (Java's) for keyed records.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { packBatch, unpackBatch } from "../../src/bridge/kafka/batch_wire.ts";
import { javaCompatiblePartitioner, murmur2 } from "../../src/bridge/kafka/partitioner.ts";
import { messageRecord, type OutRecord } from "../../src/bridge/kafka/records.ts";
import kafkajsMurmur2 from "../../node_modules/kafkajs/src/producer/partitioners/default/murmur2.js";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("a packed batch unpacks to the same topics, keys, values, timestamps and headers", () => {
  const ctx = {
    keyMode: "topic" as const,
    format: "raw" as const,
    brokerId: "b",
    nodeId: "node-ü",
    processId: "1",
  };
  const from = {
    clientId: "client-✓",
    remoteAddress: "127.0.0.1:1",
    transport: "tcp" as const,
    protocolVersion: 5 as const,
  };
  const withProps = messageRecord(
    {
      id: "m-1",
      topic: "sensors/温度",
      payload: new Uint8Array([0, 1, 255]),
      qos: 1,
      retain: true,
      createdAt: 1_700_000_000_123,
      origin: "client-✓",
      properties: {
        contentType: "text/plain",
        correlationData: new Uint8Array([9, 8, 7]),
        userProperties: [["a", "1"], ["a", "2"], ["b", ""]],
      },
    },
    from,
    "kafka-topic",
    ctx,
  );
  const unkeyed: OutRecord = {
    topic: "events",
    key: null,
    value: Buffer.from(""),
    headers: {},
    timestamp: "1700000000999",
    bytes: 70,
  };
  // Big enough that the packer has to grow its buffer.
  const big: OutRecord = { ...unkeyed, key: "k", value: Buffer.alloc(200_000, 7) };
  const out = unpackBatch(new Uint8Array(packBatch([withProps, unkeyed, big])));
  assert.equal(out.length, 3);

  const r = out[0];
  assert.equal(r.topic, "kafka-topic");
  assert.equal(text(r.key!), "sensors/温度");
  assert.deepEqual([...r.value], [0, 1, 255]);
  assert.equal(r.timestamp, 1_700_000_000_123);
  const headers = [...r.headers].map(([k, v]) => [text(k), v] as const);
  const expected: [string, Uint8Array][] = [];
  for (const [k, v] of Object.entries(withProps.headers)) {
    for (const one of Array.isArray(v) ? v : [v]) {
      expected.push([k, typeof one === "string" ? new TextEncoder().encode(one) : one]);
    }
  }
  assert.deepEqual(
    headers.map(([k, v]) => [k, [...v]]),
    expected.map(([k, v]) => [k, [...v]]),
  );
  assert.deepEqual(
    headers.filter(([k]) => k === "mqtt.user.a").map(([, v]) => text(v)),
    ["1", "2"],
    "repeated user properties stay separate headers, in order",
  );
  const userA = [...r.headers.keys()].filter((k) => text(k) === "mqtt.user.a");
  assert.notEqual(userA[0], userA[1], "a repeated name is its own object (headers become a Map)");
  assert.deepEqual(
    [...headers.find(([k]) => k === "mqtt.correlation_data")![1]],
    [9, 8, 7],
  );

  assert.equal(out[1].topic, "events");
  assert.equal(out[1].key, null);
  assert.equal(out[1].value.byteLength, 0);
  assert.equal(out[1].headers.size, 0);
  assert.equal(out[1].timestamp, 1_700_000_000_999);
  assert.equal(out[2].value.byteLength, 200_000);
  assert.equal(text(out[2].key!), "k");
});

Deno.test("keyed records go to the partition kafkajs and Kafka's Java producer choose", () => {
  const keys = ["", "a", "ab", "abc", "abcd", "dev/1/state", "sensors/温度/x", "k".repeat(1001)];
  for (let i = 0; i < 200; i++) keys.push(`devices/${i}/telemetry/${"x".repeat(i % 7)}`);
  const pick = javaCompatiblePartitioner();
  for (const k of keys) {
    const bytes = Buffer.from(k);
    assert.equal(murmur2(bytes), kafkajsMurmur2(bytes), `murmur2 of ${JSON.stringify(k)}`);
    for (const partitions of [1, 3, 7, 12]) {
      assert.equal(
        pick({ topic: "t" }, bytes) % partitions,
        (kafkajsMurmur2(bytes) & 0x7fffffff) % partitions,
      );
    }
  }
});

Deno.test("records without a key go round robin over the partitions", () => {
  const pick = javaCompatiblePartitioner();
  const seen = new Map<number, number>();
  for (let i = 0; i < 300; i++) {
    const p = pick({ topic: "t" }, undefined) % 3;
    seen.set(p, (seen.get(p) ?? 0) + 1);
  }
  assert.deepEqual([...seen.values()], [100, 100, 100]);
});
