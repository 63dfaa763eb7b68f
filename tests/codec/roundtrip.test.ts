import assert from "node:assert/strict";
import {
  Decoder,
  encode,
  encodedLengthOfString,
  encodePublish,
  type Packet,
} from "../../src/codec/mod.ts";
import { fixtures, LEVELS } from "./fixtures.ts";
import { decodeAll, hex } from "./helpers.ts";

for (const level of LEVELS) {
  Deno.test(`every level ${level} packet type survives encode then decode unchanged`, () => {
    const types = new Set<string>();
    for (const packet of fixtures(level)) {
      const bytes = encode(packet, level);
      const decoded = decodeAll(bytes, level);
      assert.deepEqual(decoded, [packet], `round trip of ${JSON.stringify(packet.type)}`);
      types.add(packet.type);
    }
    const expected = level === 5 ? 15 : 14;
    assert.equal(types.size, expected, `covered types: ${[...types].join(",")}`);
  });

  Deno.test(`level ${level} re-encoding a decoded packet gives the same bytes`, () => {
    for (const packet of fixtures(level)) {
      const bytes = encode(packet, level);
      assert.deepEqual(encode(decodeAll(bytes, level)[0], level), bytes);
    }
  });
}

Deno.test("decoder switches to the level of the CONNECT it decodes", () => {
  const decoder = new Decoder({ protocolVersion: 4 });
  const out: Packet[] = [];
  const connect: Packet = {
    type: "connect",
    protocolName: "MQTT",
    protocolVersion: 5,
    clean: true,
    keepalive: 10,
    clientId: "c",
  };
  decoder.push(encode(connect, 5), (p) => out.push(p));
  assert.equal(decoder.protocolVersion, 5);
  // A 5.0-only short form now decodes with its reason code.
  decoder.push(hex("40 03 00 07 10"), (p) => out.push(p));
  assert.deepEqual(out[1], { type: "puback", packetId: 7, reasonCode: 0x10 });
});

const capturedConnect311 = "10 14 00 04 4d 51 54 54 04 02 00 3c 00 08 6d 6f 73 71 2d 61 62 63"; // mosquitto_pub -i mosq-abc

Deno.test("byte-exact fixtures decode to the expected packets and encode back", () => {
  const cases: [string, Packet, 3 | 4 | 5][] = [
    [
      capturedConnect311,
      {
        type: "connect",
        protocolName: "MQTT",
        protocolVersion: 4,
        clean: true,
        keepalive: 60,
        clientId: "mosq-abc",
      },
      4,
    ],
    [
      "10 11 00 06 4d 51 49 73 64 70 03 02 00 3c 00 03 61 62 63",
      {
        type: "connect",
        protocolName: "MQIsdp",
        protocolVersion: 3,
        clean: true,
        keepalive: 60,
        clientId: "abc",
      },
      3,
    ],
    [
      "10 10 00 04 4d 51 54 54 05 02 00 3c 03 21 00 14 00 00",
      {
        type: "connect",
        protocolName: "MQTT",
        protocolVersion: 5,
        clean: true,
        keepalive: 60,
        clientId: "",
        properties: { receiveMaximum: 20 },
      },
      5,
    ],
    ["20 02 00 00", { type: "connack", sessionPresent: false, reasonCode: 0 }, 4],
    ["20 03 01 00 00", { type: "connack", sessionPresent: true, reasonCode: 0 }, 5],
    ["c0 00", { type: "pingreq" }, 4],
    ["d0 00", { type: "pingresp" }, 4],
    ["e0 00", { type: "disconnect" }, 4],
    ["e0 00", { type: "disconnect" }, 5],
    ["e0 01 8e", { type: "disconnect", reasonCode: 0x8e }, 5],
    ["62 02 00 01", { type: "pubrel", packetId: 1 }, 4],
    ["40 02 00 01", { type: "puback", packetId: 1 }, 5],
    ["50 03 00 01 10", { type: "pubrec", packetId: 1, reasonCode: 0x10 }, 5],
    [
      "30 07 00 03 61 2f 62 68 69",
      {
        type: "publish",
        topic: "a/b",
        payload: new TextEncoder().encode("hi"),
        qos: 0,
        retain: false,
        dup: false,
      },
      4,
    ],
    [
      "3b 09 00 03 61 2f 62 00 0a 68 69",
      {
        type: "publish",
        topic: "a/b",
        payload: new TextEncoder().encode("hi"),
        qos: 1,
        retain: true,
        dup: true,
        packetId: 10,
      },
      4,
    ],
    [
      "82 08 00 01 00 03 61 2f 62 01",
      { type: "subscribe", packetId: 1, subscriptions: [{ topic: "a/b", qos: 1 }] },
      4,
    ],
    ["90 03 00 01 01", { type: "suback", packetId: 1, reasonCodes: [1] }, 4],
    ["a2 05 00 02 00 01 23", { type: "unsubscribe", packetId: 2, topics: ["#"] }, 4],
    ["b0 02 00 02", { type: "unsuback", packetId: 2 }, 4],
    ["f0 00", { type: "auth" }, 5],
  ];
  for (const [bytes, packet, level] of cases) {
    assert.deepEqual(decodeAll(hex(bytes), level), [packet], bytes);
    assert.deepEqual(encode(packet, level), hex(bytes), bytes);
  }
});

Deno.test("5.0 acks with success and no properties use the 2-byte short form", () => {
  assert.deepEqual(encode({ type: "puback", packetId: 5, reasonCode: 0 }, 5), hex("40 02 00 05"));
  assert.deepEqual(encode({ type: "pubcomp", packetId: 5 }, 5), hex("70 02 00 05"));
  assert.deepEqual(encode({ type: "disconnect", reasonCode: 0 }, 5), hex("e0 00"));
  assert.deepEqual(encode({ type: "auth", reasonCode: 0 }, 5), hex("f0 00"));
  // 3.1.1 never carries a reason code, whatever the packet object says.
  assert.deepEqual(
    encode({ type: "puback", packetId: 5, reasonCode: 0x80 }, 4),
    hex("40 02 00 05"),
  );
});

Deno.test("decoder reads a 5.0 PUBACK with reason code and property length 0", () => {
  assert.deepEqual(decodeAll(hex("40 04 00 05 00 00"), 5), [
    { type: "puback", packetId: 5, reasonCode: 0 },
  ]);
});

Deno.test("3.1.1 packets carry no properties or reason code keys", () => {
  for (const packet of decodeAll(hex("40 02 00 01 e0 00 b0 02 00 02"), 4)) {
    assert.ok(!("properties" in packet));
    assert.ok(!("reasonCode" in packet));
    assert.ok(!("reasonCodes" in packet));
  }
});

Deno.test("encodePublish reports where the packet id sits so it can be patched", () => {
  const base = {
    type: "publish" as const,
    topic: "fan/out",
    payload: Uint8Array.of(1, 2, 3),
    retain: false,
    dup: false,
  };
  for (const level of LEVELS) {
    const { bytes, packetIdOffset } = encodePublish({ ...base, qos: 1, packetId: 1 }, level);
    const copy = bytes.slice();
    copy[packetIdOffset] = 0x12;
    copy[packetIdOffset + 1] = 0x34;
    const [decoded] = decodeAll(copy, level);
    assert.equal(decoded.type === "publish" && decoded.packetId, 0x1234);
    assert.equal(encodePublish({ ...base, qos: 0 }, level).packetIdOffset, -1);
  }
  const withProps = encodePublish(
    { ...base, qos: 2, packetId: 9, properties: { userProperties: [["a", "b"]] } },
    5,
  );
  assert.equal(withProps.bytes[withProps.packetIdOffset + 1], 9);
});

Deno.test("encoder refuses a packet over the maximum remaining length", () => {
  const huge = Object.defineProperty(new Uint8Array(0), "length", { value: 268_435_456 });
  assert.throws(
    () =>
      encode({ type: "publish", topic: "t", payload: huge, qos: 0, retain: false, dup: false }, 4),
    RangeError,
  );
  assert.throws(
    () =>
      encode({
        type: "connect",
        protocolName: "MQTT",
        protocolVersion: 4,
        clean: true,
        keepalive: 0,
        clientId: "x".repeat(70_000),
      }, 4),
    RangeError,
  );
});

Deno.test("encoder writes strings with lone surrogates the way TextEncoder does", () => {
  for (const s of ["plain", "é", "€", "🚀", "a\ud800b", "\udc00", "x\ud83d", "🚀".repeat(40)]) {
    const expected = new TextEncoder().encode(s);
    assert.equal(encodedLengthOfString(s), expected.length, JSON.stringify(s));
    const bytes = encode({ type: "unsubscribe", packetId: 1, topics: [s] }, 4);
    const start = bytes.length - expected.length;
    assert.deepEqual(bytes.subarray(start), expected, JSON.stringify(s));
    assert.equal((bytes[start - 2] << 8) | bytes[start - 1], expected.length);
  }
});

Deno.test("decoded PUBLISH payload is a view into the chunk, which is left untouched", () => {
  const bytes = hex("30 07 00 03 61 2f 62 68 69");
  const before = bytes.slice();
  const [p] = decodeAll(bytes, 4);
  assert.ok(p.type === "publish");
  assert.equal(p.payload.buffer, bytes.buffer);
  assert.equal(p.payload.byteOffset, 7);
  assert.deepEqual(bytes, before);
});
