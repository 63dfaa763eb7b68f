import assert from "node:assert/strict";
import { Decoder, encode, type Packet, ProtocolError, ReasonCode } from "../../src/codec/mod.ts";
import { assertRejects, decodeAll, hex, packet, raw, str } from "./helpers.ts";

const MALFORMED = ReasonCode.MalformedPacket;
const PROTOCOL = ReasonCode.ProtocolError;

/** CONNECT body after the protocol name and level: flags, keep alive, then `rest`. */
function connect(level: number, flags: number, ...rest: (number | number[])[]): Uint8Array {
  const name = level === 3 ? "MQIsdp" : "MQTT";
  const props = level === 5 ? [0] : [];
  return packet(0x10, str(name), level, flags, 0, 60, props, ...rest);
}

Deno.test("decoder rejects reserved fixed header flags on packets that have none", () => {
  assertRejects(hex("41 02 00 01"), 4, MALFORMED, "MQTT-2.2.2-2");
  assertRejects(hex("41 02 00 01"), 5, MALFORMED, "MQTT-2.1.3-1");
  assertRejects(hex("c1 00"), 4, MALFORMED, "MQTT-2.2.2-2");
  assertRejects(hex("e8 00"), 5, MALFORMED, "MQTT-2.1.3-1");
  assertRejects(hex("1f 00"), 4, MALFORMED, "MQTT-2.2.2-2");
});

Deno.test("decoder rejects PUBREL with flags other than 0x2", () => {
  for (const level of [4, 5] as const) {
    assertRejects(hex("60 02 00 01"), level, MALFORMED, "MQTT-3.6.1-1");
    assertRejects(hex("63 02 00 01"), level, MALFORMED, "MQTT-3.6.1-1");
    assertRejects(hex("6a 02 00 01"), level, MALFORMED, "MQTT-3.6.1-1");
  }
});

Deno.test("decoder rejects SUBSCRIBE and UNSUBSCRIBE with flags other than 0x2", () => {
  const sub = packet(0x80, 0, 1, str("a"), 0);
  const unsub = packet(0xa0, 0, 1, str("a"));
  assertRejects(sub, 4, MALFORMED, "MQTT-3.8.1-1");
  assertRejects(unsub, 5, MALFORMED, "MQTT-3.10.1-1");
});

Deno.test("decoder tolerates the DUP bit on MQTT 3.1 PUBREL and SUBSCRIBE only", () => {
  assert.deepEqual(decodeAll(hex("6a 02 00 01"), 3), [{ type: "pubrel", packetId: 1 }]);
  assert.equal(decodeAll(packet(0x8a, 0, 1, str("a"), 0), 3)[0].type, "subscribe");
  assertRejects(hex("41 02 00 01"), 3, MALFORMED, "MQTT-2.2.2-2");
});

Deno.test("decoder rejects PUBLISH with QoS 3", () => {
  assertRejects(packet(0x36, str("a"), 0, 1), 4, MALFORMED, "MQTT-3.3.1-4");
  assertRejects(packet(0x36, str("a"), 0, 1, 0), 5, MALFORMED, "MQTT-3.3.1-4");
});

Deno.test("decoder rejects PUBLISH QoS 0 with DUP set", () => {
  assertRejects(packet(0x38, str("a")), 4, MALFORMED, "MQTT-3.3.1-2");
  assertRejects(packet(0x38, str("a"), 0), 5, MALFORMED, "MQTT-3.3.1-2");
});

Deno.test("decoder rejects reserved packet types", () => {
  assertRejects(hex("00 00"), 4, MALFORMED, "2.2.1");
  assertRejects(hex("00 00"), 5, MALFORMED, "2.1.2");
  assertRejects(hex("f0 00"), 4, MALFORMED, "2.2.1");
});

Deno.test("decoder rejects a remaining length with a fifth byte", () => {
  for (const [level, statement] of [[4, "2.2.3"], [5, "MQTT-1.5.5-1"]] as const) {
    const decoder = new Decoder({ protocolVersion: level });
    // The error comes at the fourth continuation byte, before a fifth is even sent.
    decoder.push(hex("30 ff ff ff"), () => {});
    assert.throws(() => decoder.push(hex("ff"), () => {}), (e: unknown) => {
      return e instanceof ProtocolError && e.statement === statement && e.reasonCode === MALFORMED;
    });
  }
});

Deno.test("decoder rejects remaining lengths too short for the fields", () => {
  assertRejects(hex("30 01 00"), 4, MALFORMED, "2.2.3");
  assertRejects(hex("30 03 00 05 61"), 5, MALFORMED, "2.1.4");
  assertRejects(hex("32 03 00 01 61"), 4, MALFORMED, "2.2.3");
  assertRejects(hex("40 01 00"), 4, MALFORMED, "2.2.3");
  assertRejects(hex("20 01 00"), 4, MALFORMED, "2.2.3");
  assertRejects(hex("20 02 00 00"), 5, MALFORMED, "2.1.4");
  assertRejects(packet(0x10, str("MQTT"), 4, 2, 0), 4, MALFORMED, "2.2.3");
  assertRejects(connect(4, 0x82, str("id")), 4, MALFORMED, "2.2.3");
  assertRejects(connect(4, 0x06, str("id"), str("w")), 4, MALFORMED, "2.2.3");
});

Deno.test("decoder rejects trailing bytes in packets whose layout ends earlier", () => {
  assertRejects(hex("40 03 00 01 00"), 4, MALFORMED, "2.2.3");
  assertRejects(hex("c0 01 00"), 4, MALFORMED, "2.2.3");
  assertRejects(hex("d0 01 00"), 5, MALFORMED, "2.1.4");
  assertRejects(hex("e0 01 00"), 4, MALFORMED, "2.2.3");
  assertRejects(hex("20 03 00 00 00"), 4, MALFORMED, "2.2.3");
  assertRejects(hex("b0 03 00 01 00"), 4, MALFORMED, "2.2.3");
  assertRejects(connect(4, 0x02, str("id"), 7), 4, MALFORMED, "2.2.3");
  assertRejects(hex("40 05 00 01 00 00 00"), 5, MALFORMED, "2.1.4");
});

Deno.test("decoder rejects ill-formed UTF-8 in strings", () => {
  const bad = [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80]];
  for (const bytes of bad) {
    assertRejects(packet(0x30, raw(...bytes)), 4, MALFORMED, "MQTT-1.5.3-1");
    assertRejects(packet(0x30, raw(...bytes), 0), 5, MALFORMED, "MQTT-1.5.4-1");
  }
  assertRejects(connect(4, 0x02, raw(0x61, 0xff)), 4, MALFORMED, "MQTT-1.5.3-1");
  assertRejects(packet(0xa2, 0, 1, raw(0xc3)), 4, MALFORMED, "MQTT-1.5.3-1");
  // A long non-ASCII string takes the TextDecoder path.
  const long = [...new TextEncoder().encode("é".repeat(40)), 0xff];
  assertRejects(packet(0x30, raw(...long)), 4, MALFORMED, "MQTT-1.5.3-1");
});

Deno.test("decoder rejects U+0000 in strings", () => {
  assertRejects(packet(0x30, raw(0x61, 0x00)), 4, MALFORMED, "MQTT-1.5.3-2");
  assertRejects(packet(0x30, raw(0x00), 0), 5, MALFORMED, "MQTT-1.5.4-2");
  assertRejects(connect(5, 0x02, raw(0x61, 0, 0x62)), 5, MALFORMED, "MQTT-1.5.4-2");
  const userProperty = [0x26, ...str("k"), ...raw(0x76, 0)];
  assertRejects(
    packet(0x30, str("t"), userProperty.length, userProperty),
    5,
    MALFORMED,
    "MQTT-1.5.4-2",
  );
});

Deno.test("decoder keeps a byte order mark at the start of a string", () => {
  const [p] = decodeAll(packet(0x30, raw(0xef, 0xbb, 0xbf, 0x61)), 4);
  assert.ok(p.type === "publish");
  assert.equal(p.topic, "\uFEFFa");
});

Deno.test("decoder rejects wildcards in a PUBLISH topic name", () => {
  for (const topic of ["a/+", "#", "a/#/b", "+"]) {
    assertRejects(packet(0x30, str(topic)), 4, ReasonCode.TopicNameInvalid, "MQTT-3.3.2-2");
    assertRejects(packet(0x30, str(topic), 0), 5, ReasonCode.TopicNameInvalid, "MQTT-3.3.2-2");
  }
  const willFlags = 0x06;
  assertRejects(
    connect(4, willFlags, str("id"), str("w/+"), str("x")),
    4,
    ReasonCode.TopicNameInvalid,
    "MQTT-4.7.1-1",
  );
  assertRejects(
    connect(5, willFlags, str("id"), 0, str("w/#"), str("x")),
    5,
    ReasonCode.TopicNameInvalid,
    "MQTT-4.7.0-1",
  );
});

Deno.test("decoder rejects an empty PUBLISH topic unless 5.0 gives a topic alias", () => {
  assertRejects(packet(0x30, str("")), 3, PROTOCOL, "MQTT-4.7.3-1");
  assertRejects(packet(0x30, str("")), 4, PROTOCOL, "MQTT-4.7.3-1");
  assertRejects(packet(0x30, str(""), 0), 5, PROTOCOL, "3.3.2.1");
  const [p] = decodeAll(packet(0x30, str(""), 3, 0x23, 0, 1), 5);
  assert.ok(p.type === "publish");
  assert.deepEqual(p.properties, { topicAlias: 1 });
  assertRejects(
    connect(4, 0x06, str("id"), str(""), str("x")),
    4,
    ReasonCode.TopicNameInvalid,
    "MQTT-4.7.3-1",
  );
});

Deno.test("decoder rejects packet identifier 0 where one is required", () => {
  const cases = [
    packet(0x32, str("a"), 0, 0),
    packet(0x34, str("a"), 0, 0),
    hex("40 02 00 00"),
    hex("50 02 00 00"),
    hex("62 02 00 00"),
    hex("70 02 00 00"),
    packet(0x82, 0, 0, str("a"), 0),
    packet(0x90, 0, 0, 0),
    packet(0xa2, 0, 0, str("a")),
    hex("b0 02 00 00"),
  ];
  for (const bytes of cases) assertRejects(bytes, 4, PROTOCOL, "MQTT-2.3.1-1");
  assertRejects(packet(0x32, str("a"), 0, 0, 0), 5, PROTOCOL, "MQTT-2.2.1-3");
  assertRejects(hex("40 02 00 00"), 5, PROTOCOL, "MQTT-2.2.1-3");
  assertRejects(packet(0x82, 0, 0, 0, str("a"), 0), 5, PROTOCOL, "MQTT-2.2.1-3");
});

Deno.test("decoder rejects SUBSCRIBE without topic filters", () => {
  assertRejects(hex("82 02 00 01"), 4, PROTOCOL, "MQTT-3.8.3-3");
  assertRejects(hex("82 03 00 01 00"), 5, PROTOCOL, "MQTT-3.8.3-2");
});

Deno.test("decoder rejects UNSUBSCRIBE without topic filters", () => {
  assertRejects(hex("a2 02 00 01"), 4, PROTOCOL, "MQTT-3.10.3-2");
  assertRejects(hex("a2 03 00 01 00"), 5, PROTOCOL, "MQTT-3.10.3-2");
});

Deno.test("decoder rejects SUBSCRIBE with requested QoS 3 or reserved option bits", () => {
  assertRejects(packet(0x82, 0, 1, str("a"), 3), 4, MALFORMED, "MQTT-3-8.3-4");
  assertRejects(packet(0x82, 0, 1, str("a"), 0x04), 4, MALFORMED, "MQTT-3-8.3-4");
  assertRejects(packet(0x82, 0, 1, str("a"), 0x80), 3, MALFORMED, "MQTT-3-8.3-4");
  assertRejects(packet(0x82, 0, 1, 0, str("a"), 0x40), 5, MALFORMED, "MQTT-3.8.3-5");
  assertRejects(packet(0x82, 0, 1, 0, str("a"), 0x03), 5, PROTOCOL, "3.8.3.1");
  assertRejects(packet(0x82, 0, 1, 0, str("a"), 0x30), 5, PROTOCOL, "3.8.3.1");
  assertRejects(packet(0x82, 0, 1, 0, str("$share/g/a"), 0x04), 5, PROTOCOL, "MQTT-3.8.3-4");
});

Deno.test("decoder rejects CONNECT with the reserved flag set", () => {
  assertRejects(connect(4, 0x03, str("id")), 4, MALFORMED, "MQTT-3.1.2-3");
  assertRejects(connect(5, 0x01, str("id")), 5, MALFORMED, "MQTT-3.1.2-3");
  assertRejects(connect(3, 0x03, str("id")), 4, MALFORMED, "MQTT-3.1.2-3");
});

Deno.test("decoder rejects will QoS or retain without the will flag", () => {
  assertRejects(connect(4, 0x0a, str("id")), 4, MALFORMED, "MQTT-3.1.2-13");
  assertRejects(connect(4, 0x22, str("id")), 4, MALFORMED, "MQTT-3.1.2-15");
  assertRejects(connect(5, 0x12, str("id")), 5, MALFORMED, "MQTT-3.1.2-11");
  assertRejects(connect(5, 0x22, str("id")), 5, MALFORMED, "MQTT-3.1.2-13");
});

Deno.test("decoder rejects will QoS 3", () => {
  assertRejects(connect(4, 0x1e, str("id"), str("w"), str("x")), 4, MALFORMED, "MQTT-3.1.2-14");
  assertRejects(
    connect(5, 0x1e, str("id"), 0, str("w"), str("x")),
    5,
    MALFORMED,
    "MQTT-3.1.2-12",
  );
});

Deno.test("decoder rejects a password without user name before 5.0", () => {
  assertRejects(connect(4, 0x42, str("id"), str("pw")), 4, PROTOCOL, "MQTT-3.1.2-22");
  assertRejects(connect(3, 0x42, str("id"), str("pw")), 4, PROTOCOL, "MQTT-3.1.2-22");
  const [p] = decodeAll(connect(5, 0x42, str("id"), str("pw")), 4);
  assert.ok(p.type === "connect");
  assert.deepEqual(p.password, new TextEncoder().encode("pw"));
});

Deno.test("decoder hands out a CONNECT of unknown level or name for the broker to refuse", () => {
  const decoder = new Decoder();
  const out: Packet[] = [];
  decoder.push(packet(0x10, str("MQTT"), 6, 0x02, 0, 60, str("id")), (p) => out.push(p));
  decoder.push(packet(0x10, str("MQTT"), 2, 0x02, 0, 60, 0xff, 0xff, 9), (p) => out.push(p));
  assert.deepEqual(out, [
    {
      type: "connect",
      protocolName: "MQTT",
      protocolVersion: 6,
      clean: true,
      keepalive: 60,
      clientId: "id",
    },
    {
      type: "connect",
      protocolName: "MQTT",
      protocolVersion: 2,
      clean: true,
      keepalive: 60,
      clientId: "",
    },
  ]);
  assert.equal(decoder.protocolVersion, 4, "an unknown level leaves the decoder's level alone");
  const [odd] = decodeAll(connect(4, 0x02, str("id")).map((b, i) => (i === 5 ? 0x6e : b)), 4);
  assert.ok(odd.type === "connect");
  assert.equal(odd.protocolName, "MnTT");
  assert.equal(odd.protocolVersion, 4);
  // Truncated before the connect flags / keep alive: still malformed.
  assertRejects(packet(0x10, str("MQTT"), 9), 4, MALFORMED, "2.2.3");
  assertRejects(packet(0x10, str("MQTT"), 9, 0, 0), 4, MALFORMED, "2.2.3");
});

Deno.test("decoder rejects CONNACK with reserved acknowledge flags", () => {
  assertRejects(hex("20 02 02 00"), 4, MALFORMED, "3.2.2.1");
  assertRejects(hex("20 03 80 00 00"), 5, MALFORMED, "MQTT-3.2.2-1");
});

Deno.test("decoder rejects reason codes a 5.0 packet may not carry", () => {
  assertRejects(hex("40 03 00 01 92"), 5, PROTOCOL, "MQTT-3.4.2-1");
  assertRejects(hex("50 03 00 01 01"), 5, PROTOCOL, "MQTT-3.5.2-1");
  assertRejects(hex("62 03 00 01 80"), 5, PROTOCOL, "MQTT-3.6.2-1");
  assertRejects(hex("70 03 00 01 10"), 5, PROTOCOL, "MQTT-3.7.2-1");
  assertRejects(hex("90 04 00 01 00 03"), 5, PROTOCOL, "MQTT-3.9.3-2");
  assertRejects(hex("90 03 00 01 03"), 4, PROTOCOL, "MQTT-3.9.3-2");
  assertRejects(hex("b0 04 00 01 00 01"), 5, PROTOCOL, "MQTT-3.11.3-2");
  assertRejects(hex("e0 01 01"), 5, PROTOCOL, "MQTT-3.14.2-1");
  assertRejects(hex("f0 01 04"), 5, PROTOCOL, "MQTT-3.15.2-1");
});

/** A 5.0 PUBLISH "t" QoS 0 whose property block is `props` (length prefix added). */
function publishWith(...props: number[]): Uint8Array {
  return packet(0x30, str("t"), props.length, props, 0x61);
}

Deno.test("decoder rejects unknown 5.0 property identifiers", () => {
  assertRejects(publishWith(0x7f, 0), 5, MALFORMED, "2.2.2.2");
  assertRejects(publishWith(0x04, 0), 5, MALFORMED, "2.2.2.2");
  assertRejects(publishWith(0x80, 0x01, 0), 5, MALFORMED, "2.2.2.2");
});

Deno.test("decoder rejects 5.0 properties not allowed in the packet type", () => {
  assertRejects(publishWith(0x11, 0, 0, 0, 1), 5, MALFORMED, "2.2.2.2");
  assertRejects(packet(0x40, 0, 1, 0, 2, 0x01, 1), 5, MALFORMED, "2.2.2.2");
  assertRejects(packet(0x20, 0, 0, 2, 0x17, 1), 5, MALFORMED, "2.2.2.2");
  // Will Delay Interval belongs to the will, not the CONNECT itself.
  assertRejects(
    packet(0x10, str("MQTT"), 5, 0x02, 0, 60, 5, 0x18, 0, 0, 0, 1, str("id")),
    4,
    MALFORMED,
    "2.2.2.2",
  );
  assertRejects(
    packet(0x10, str("MQTT"), 5, 0x06, 0, 60, 0, str("id"), 5, 0x11, 0, 0, 0, 1, str("w"), str("")),
    4,
    MALFORMED,
    "2.2.2.2",
  );
});

Deno.test("decoder rejects a 5.0 property given twice where it may appear once", () => {
  assertRejects(publishWith(0x01, 0, 0x01, 1), 5, PROTOCOL, "3.3.2.3.2");
  assertRejects(publishWith(0x23, 0, 1, 0x23, 0, 2), 5, PROTOCOL, "MQTT-3.3.2-8");
  assertRejects(packet(0x82, 0, 1, 4, 0x0b, 1, 0x0b, 2, str("a"), 0), 5, PROTOCOL, "3.8.2.1.2");
});

Deno.test("decoder accepts repeated user properties and PUBLISH subscription identifiers", () => {
  const [p] = decodeAll(
    publishWith(0x26, ...str("a"), ...str("1"), 0x0b, 5, 0x26, ...str("a"), ...str("2"), 0x0b, 7),
    5,
  );
  assert.ok(p.type === "publish");
  assert.deepEqual(p.properties, {
    userProperties: [["a", "1"], ["a", "2"]],
    subscriptionIdentifiers: [5, 7],
  });
});

Deno.test("decoder rejects a 5.0 property length running past the packet", () => {
  assertRejects(packet(0x30, str("t"), 9, 0x01, 0), 5, MALFORMED, "2.2.2.1");
  // A value that runs past its property block is caught too.
  assertRejects(packet(0x30, str("t"), 2, 0x02, 0, 0, 0, 0), 5, MALFORMED, "2.1.4");
  assertRejects(packet(0x40, 0, 1, 0, 5, 0x1f, 0, 9, 0x61), 5, MALFORMED, "2.2.2.1");
});

Deno.test("decoder rejects out-of-range 5.0 property values", () => {
  assertRejects(publishWith(0x0b, 0), 5, PROTOCOL, "3.8.2.1.2");
  assertRejects(publishWith(0x01, 2), 5, PROTOCOL, "3.3.2.3.2");
  assertRejects(publishWith(0x23, 0, 0), 5, ReasonCode.TopicAliasInvalid, "MQTT-3.3.2-8");
  const connectWith = (...props: number[]) =>
    packet(0x10, str("MQTT"), 5, 0x02, 0, 60, props.length, props, str("id"));
  assertRejects(connectWith(0x21, 0, 0), 4, PROTOCOL, "3.1.2.11.3");
  assertRejects(connectWith(0x27, 0, 0, 0, 0), 4, PROTOCOL, "3.1.2.11.4");
  assertRejects(connectWith(0x17, 2), 4, PROTOCOL, "3.1.2.11.7");
  assertRejects(connectWith(0x19, 7), 4, PROTOCOL, "3.1.2.11.6");
  assertRejects(connectWith(0x16, 0, 1, 9), 4, PROTOCOL, "3.1.2.11.10");
  const connackWith = (...props: number[]) => packet(0x20, 0, 0, props.length, props);
  assertRejects(connackWith(0x24, 2), 5, PROTOCOL, "3.2.2.3.4");
  assertRejects(connackWith(0x25, 2), 5, PROTOCOL, "3.2.2.3.5");
  assertRejects(connackWith(0x28, 2), 5, PROTOCOL, "3.2.2.3.11");
  assertRejects(connackWith(0x21, 0, 0), 5, PROTOCOL, "3.1.2.11.3");
});

Deno.test("decoder rejects variable byte integers longer than 4 bytes in properties", () => {
  assertRejects(packet(0x30, str("t"), 0x80, 0x80, 0x80, 0x80, 0x01), 5, MALFORMED, "MQTT-1.5.5-1");
  assertRejects(publishWith(0x0b, 0x80, 0x80, 0x80, 0x80, 0x01), 5, MALFORMED, "MQTT-1.5.5-1");
});

Deno.test("decoder stays failed after an error", () => {
  const decoder = new Decoder();
  assert.throws(() => decoder.push(hex("41 02 00 01"), () => {}), ProtocolError);
  assert.throws(() => decoder.push(hex("c0 00"), () => {}), ProtocolError);
});

Deno.test("decoder rejects a packet over maxPacketSize right after its fixed header", () => {
  for (const level of [3, 4, 5] as const) {
    const decoder = new Decoder({ protocolVersion: level, maxPacketSize: 1024 });
    let emitted = 0;
    // 0x30, remaining length 2000 (d0 0f): 2003 bytes in all; no body byte is ever sent.
    decoder.push(hex("30"), () => emitted++);
    decoder.push(hex("d0"), () => emitted++);
    assert.throws(() => decoder.push(hex("0f"), () => emitted++), (e: unknown) => {
      return e instanceof ProtocolError && e.reasonCode === ReasonCode.PacketTooLarge &&
        e.statement === (level === 5 ? "3.2.2.3.6" : "2.2.3");
    });
    assert.equal(emitted, 0);
  }
});

Deno.test("maxPacketSize counts the fixed header and can be changed between packets", () => {
  const bytes = encode({
    type: "publish",
    topic: "t",
    payload: new Uint8Array(100),
    qos: 0,
    retain: false,
    dup: false,
  }, 4);
  assert.equal(decodeAll(bytes, 4, bytes.length).length, 1);
  assertProtocolErrorTooLarge(() => decodeAll(bytes, 4, bytes.length - 1));
  const decoder = new Decoder();
  decoder.push(bytes, () => {});
  decoder.maxPacketSize = 10;
  assertProtocolErrorTooLarge(() => decoder.push(hex("30 7f"), () => {}));
  // The default admits the largest remaining length the wire format can express.
  const big = new Decoder();
  big.push(hex("30 ff ff ff 7f 00"), () => {});
});

function assertProtocolErrorTooLarge(fn: () => unknown) {
  assert.throws(fn, (e: unknown) => e instanceof ProtocolError && e.reasonCode === 0x95);
}
