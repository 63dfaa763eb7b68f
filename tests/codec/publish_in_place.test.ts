import assert from "node:assert/strict";
import {
  encodeMessageProperties,
  encodePublish,
  NO_MESSAGE_PROPERTIES,
  publishPropertiesLengthV5,
  publishSizeV4,
  publishSizeV5,
  writePublishV4,
  writePublishV5,
} from "../../src/codec/encoder.ts";
import type { Properties, QoS } from "../../src/codec/packets.ts";
import { utf8Length } from "../../src/codec/utf8.ts";

const enc = new TextEncoder();

function inPlace(topic: string, payload: Uint8Array, qos: QoS, retain: boolean, pid: number) {
  const topicBytes = utf8Length(topic);
  const size = publishSizeV4(topicBytes, payload.length, qos);
  // Written after a prefix, as into a connection's output buffer.
  const buf = new Uint8Array(3 + size + 2).fill(0xee);
  const end = writePublishV4(buf, 3, topic, topicBytes, payload, qos, retain, pid);
  assert.equal(end, 3 + size, "returns the end of what it wrote");
  assert.deepEqual([...buf.subarray(0, 3)], [0xee, 0xee, 0xee], "prefix untouched");
  assert.deepEqual([...buf.subarray(end)], [0xee, 0xee], "nothing written past the end");
  return buf.subarray(3, end);
}

Deno.test("a PUBLISH written in place equals the encoder's, for every QoS, RETAIN and size", () => {
  const payloads = [0, 1, 100, 127, 200, 16_383, 16_500, 70_000].map((n) =>
    Uint8Array.from({ length: n }, (_, i) => i & 0xff)
  );
  for (const topic of ["a", "bench/p2p/7", "héllo/wörld/€/𝄞", "x".repeat(300)]) {
    for (const payload of payloads) {
      for (const qos of [0, 1, 2] as QoS[]) {
        for (const retain of [false, true]) {
          const pid = qos > 0 ? 0xbeef : 0;
          const want = encodePublish(
            {
              type: "publish",
              topic,
              payload,
              qos,
              retain,
              dup: false,
              packetId: pid || undefined,
            },
            4,
          ).bytes;
          assert.deepEqual(inPlace(topic, payload, qos, retain, pid), want, `${topic} ${qos}`);
        }
      }
    }
  }
});

Deno.test("publishSizeV4 refuses a topic longer than an MQTT string can be", () => {
  assert.throws(() => publishSizeV4(0x10000, 0, 0), RangeError);
  assert.equal(publishSizeV4(enc.encode("t").length, 0, 0), 5);
});

/** A 5.0 PUBLISH written in place after a prefix, checked for staying inside its size. */
function inPlaceV5(
  topic: string,
  payload: Uint8Array,
  qos: QoS,
  retain: boolean,
  dup: boolean,
  pid: number,
  props: Properties | undefined,
  expiry: number,
  ids: number[] | null,
  alias: number,
) {
  const mp = encodeMessageProperties(props);
  const topicBytes = utf8Length(topic);
  const propsLength = publishPropertiesLengthV5(mp, expiry, ids, alias);
  const size = publishSizeV5(topicBytes, payload.length, qos, propsLength);
  const buf = new Uint8Array(3 + size + 2).fill(0xee);
  const end = writePublishV5(
    buf,
    3,
    topic,
    topicBytes,
    payload,
    qos,
    retain,
    dup,
    pid,
    mp,
    propsLength,
    expiry,
    ids,
    alias,
  );
  assert.equal(end, 3 + size, "returns the end of what it wrote");
  assert.deepEqual([...buf.subarray(0, 3)], [0xee, 0xee, 0xee], "prefix untouched");
  assert.deepEqual([...buf.subarray(end)], [0xee, 0xee], "nothing written past the end");
  return buf.subarray(3, end);
}

const MESSAGE_PROPERTIES: (Properties | undefined)[] = [
  undefined,
  {},
  { payloadFormatIndicator: 1 },
  { messageExpiryInterval: 60 },
  { payloadFormatIndicator: 0, messageExpiryInterval: 0xffffffff },
  { contentType: "text/plain; charset=utf-8" },
  { responseTopic: "reply/here", correlationData: Uint8Array.of(1, 2, 3) },
  { userProperties: [["a", "b"], ["ä", "€"], ["a", "again"]] },
  {
    payloadFormatIndicator: 1,
    messageExpiryInterval: 3600,
    contentType: "application/json",
    responseTopic: "r/🙂",
    correlationData: new Uint8Array(300).fill(7),
    userProperties: [["k", "v".repeat(200)]],
  },
];

// 3.3.2.3: the message's own properties reach every subscriber unchanged; a delivery adds its
// Topic Alias (MQTT-3.3.2-7 owns it per connection), Subscription Identifiers (MQTT-3.3.4-3) and
// a remaining Message Expiry Interval (MQTT-3.3.2-6).
Deno.test("a 5.0 PUBLISH written in place equals the encoder's, for every property mix", () => {
  const payloads = [0, 16, 127, 16_500].map((n) =>
    Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff)
  );
  const idSets: (number[] | null)[] = [null, [1], [5, 200, 268_435_455]];
  for (const topic of ["bench/p2p/7", "héllo/wörld/€/𝄞", ""]) {
    for (const props of MESSAGE_PROPERTIES) {
      for (const expiry of [-1, 0, 1, 59, 0x10000]) {
        for (const ids of idSets) {
          for (const alias of topic === "" ? [1, 65535] : [0, 1, 300]) {
            for (const qos of [0, 1, 2] as QoS[]) {
              for (const payload of payloads) {
                const retain = payload.length % 2 === 0;
                const dup = qos > 0 && alias === 1;
                const pid = qos > 0 ? 0xbeef : 0;
                const properties: Properties = { ...props };
                if (expiry >= 0) properties.messageExpiryInterval = expiry;
                if (ids !== null) properties.subscriptionIdentifiers = ids;
                if (alias > 0) properties.topicAlias = alias;
                const want = encodePublish({
                  type: "publish",
                  topic,
                  payload,
                  qos,
                  retain,
                  dup,
                  packetId: pid || undefined,
                  properties,
                }, 5).bytes;
                const got = inPlaceV5(
                  topic,
                  payload,
                  qos,
                  retain,
                  dup,
                  pid,
                  props,
                  expiry,
                  ids,
                  alias,
                );
                assert.deepEqual(
                  got,
                  want,
                  `${topic} ${JSON.stringify(props)} ${expiry} ${ids} ${alias} ${qos}`,
                );
              }
            }
          }
        }
      }
    }
  }
});

Deno.test("a delivery's own values are not taken from the message's properties", () => {
  // A Topic Alias or Subscription Identifier left on a message (from the publisher's PUBLISH)
  // must not reach subscribers: MQTT-3.3.2-7, MQTT-3.3.4-6.
  const mp = encodeMessageProperties({
    topicAlias: 9,
    subscriptionIdentifiers: [4],
    contentType: "x",
  });
  assert.deepEqual(mp, encodeMessageProperties({ contentType: "x" }));
  assert.equal(encodeMessageProperties({ topicAlias: 3 }), NO_MESSAGE_PROPERTIES);
  assert.equal(encodeMessageProperties(undefined), NO_MESSAGE_PROPERTIES);
});

Deno.test("publishSizeV5 refuses a topic longer than an MQTT string can be", () => {
  assert.throws(() => publishSizeV5(0x10000, 0, 0, 0), RangeError);
  // Header, length, empty topic, property length 0, no payload.
  assert.equal(publishSizeV5(0, 0, 0, 0), 5);
});
