/** The cluster's one wire format: every message survives encoding and decoding unchanged. */
import assert from "node:assert/strict";
import type { Properties } from "../../src/codec/packets.ts";
import {
  PENDING_DELIVERIES,
  PUBLISHER_ACK,
  PUBLISHER_ACK_ID,
  type StoredMessage,
} from "../../src/broker/model.ts";
import { Buffer } from "node:buffer";
import {
  decodeFrames as decodeFramesMarked,
  decodeWire,
  encodeBatch,
  encodeForwardInto,
  encodeWire,
  forwardBound,
  idParts,
  type WireMessage,
} from "../../src/cluster/wire.ts";
import { Out } from "../../src/cluster/wire_fields.ts";
import { RecentIds } from "../../src/cluster/recent_ids.ts";
import { MessageFactory } from "../../src/broker/messages.ts";
import { unmarked } from "../helpers/unmarked.ts";

// Messages decoded for delivery carry the broker's (empty) delivery marks; comparisons leave them
// out (a test below checks they are there).
const decodeFrames = (
  b: Uint8Array,
  each: (m: WireMessage) => void,
  bad: (e: unknown) => void,
): void => decodeFramesMarked(b, (m) => each(unmarked(m)), bad);

const enc = new TextEncoder();

/** Every MQTT 5 property at once, with values at the edges of their ranges. */
const everyProperty: Required<Properties> = {
  payloadFormatIndicator: 1,
  messageExpiryInterval: 0xffffffff,
  contentType: "application/json; charset=utf-8",
  responseTopic: "reply/ü/🚀",
  correlationData: new Uint8Array([0, 1, 2, 255]),
  subscriptionIdentifiers: [1, 268_435_455],
  sessionExpiryInterval: 0xffffffff,
  assignedClientIdentifier: "auto-123",
  serverKeepAlive: 65535,
  authenticationMethod: "SCRAM-SHA-256",
  authenticationData: new Uint8Array(300).fill(7),
  requestProblemInformation: 0,
  willDelayInterval: 30,
  requestResponseInformation: 1,
  responseInformation: "resp",
  serverReference: "other:1883",
  reasonString: "why",
  receiveMaximum: 10,
  topicAliasMaximum: 0,
  topicAlias: 3,
  maximumQoS: 1,
  retainAvailable: 0,
  userProperties: [["a", "1"], ["a", "2"], ["", ""], ["ключ", "значение"]],
  maximumPacketSize: 1_048_576,
  wildcardSubscriptionAvailable: 1,
  subscriptionIdentifiersAvailable: 1,
  sharedSubscriptionAvailable: 0,
};

const full: StoredMessage = {
  id: "n1-42",
  topic: "a/b/ç",
  payload: enc.encode("hello"),
  qos: 2,
  retain: true,
  properties: everyProperty,
  createdAt: 1_720_000_000_123,
  expiresAt: 1_720_000_060_123.5,
  origin: "client-7",
  dup: true,
};

const bare: StoredMessage = {
  id: "n2-1",
  topic: "t",
  payload: new Uint8Array(0),
  qos: 0,
  retain: false,
  createdAt: 0,
};

function roundTrip(m: WireMessage): WireMessage {
  return decodeWire(encodeWire(m));
}

Deno.test("wire: a forwarded message keeps every field, its properties and its payload", () => {
  for (const msg of [full, bare, { ...bare, dup: false, qos: 1 as const }]) {
    const back = roundTrip({ kind: "publish", msg });
    assert.deepStrictEqual(back, { kind: "publish", msg });
  }
});

Deno.test("wire: a message for one shared group keeps the group, its hops and every message field", () => {
  for (const msg of [full, bare]) {
    const m: WireMessage = { kind: "publish-shared", share: "$share/g/a/+", hops: 1, msg };
    assert.deepStrictEqual(roundTrip(m), m);
  }
});

Deno.test("wire: a message for named sessions keeps their ids and every message field", () => {
  for (const clientIds of [["a"], ["a", "b/c", "ünï"], []]) {
    for (const msg of [full, bare]) {
      const m: WireMessage = { kind: "publish-to", clientIds, msg };
      assert.deepStrictEqual(roundTrip(m), m);
    }
  }
});

Deno.test("wire: absent optional fields stay absent rather than becoming undefined", () => {
  const back = roundTrip({ kind: "publish", msg: bare });
  assert.equal(back.kind, "publish");
  if (back.kind !== "publish") return;
  for (const key of ["properties", "expiresAt", "origin", "dup"]) {
    assert.ok(!(key in back.msg), `${key} should be absent`);
  }
});

Deno.test("wire: decoded bytes are plain copies, independent of the frame they came from", () => {
  const frame = encodeWire({ kind: "publish", msg: full });
  const back = decodeWire(frame);
  if (back.kind !== "publish") throw new Error("wrong kind");
  assert.equal(back.msg.payload.constructor, Uint8Array);
  assert.equal(back.msg.properties!.correlationData!.constructor, Uint8Array);
  frame.fill(0);
  assert.deepStrictEqual(back.msg.payload, enc.encode("hello"));
});

Deno.test("wire: the payload travels as raw bytes after a small header", () => {
  const payload = new Uint8Array(64 * 1024).map((_, i) => i & 0xff);
  const msg: StoredMessage = { ...bare, qos: 1, payload, origin: "c" };
  const frame = encodeWire({ kind: "publish", msg });
  assert.ok(frame.byteLength - payload.byteLength < 40, `header of ${frame.byteLength} bytes`);
  assert.deepStrictEqual(
    new Uint8Array(frame.subarray(frame.byteLength - payload.byteLength)),
    payload,
  );
});

Deno.test("wire: every control message of the protocol round-trips", () => {
  const messages: WireMessage[] = [
    { kind: "route-added", node: "n1", filter: "a/+/#" },
    { kind: "route-removed", node: "n1", filter: "a\nb" },
    { kind: "routes-reset", node: "n-ü" },
    { kind: "retained", from: "n1", topic: "r/1", msg: full },
    { kind: "retained", from: "n1", topic: "r/1", msg: null },
    { kind: "node-gone", node: "n3" },
    { kind: "release", clientId: "", from: "n2", req: crypto.randomUUID() },
    { kind: "released", req: "req-1" },
    {
      kind: "will",
      kept: {
        will: {
          topic: "will/x",
          payload: enc.encode("gone"),
          qos: 1,
          retain: true,
          properties: { willDelayInterval: 5, userProperties: [["k", "v"]] },
        },
        username: "alice",
        protocolVersion: 5,
      },
    },
    {
      kind: "will",
      kept: {
        will: { topic: "w", payload: new Uint8Array(0), qos: 0, retain: false },
        protocolVersion: 4,
      },
    },
  ];
  for (const m of messages) assert.deepStrictEqual(roundTrip(m), m);
});

Deno.test("wire: truncated or unknown frames are refused, not misread", () => {
  const frame = encodeWire({ kind: "release", clientId: "c", from: "n2", req: "r" });
  assert.throws(() => decodeWire(frame.subarray(0, frame.byteLength - 1)), /truncated/);
  assert.throws(() => decodeWire(new Uint8Array([200])), /unknown cluster message/);
  assert.throws(() => decodeWire(new Uint8Array(0)), /truncated/);
});

/** Everything decodeFrames yields for `frame`, and what it refused. */
function frames(frame: Uint8Array): { got: WireMessage[]; bad: string[] } {
  const got: WireMessage[] = [];
  const bad: string[] = [];
  decodeFrames(frame, (m) => got.push(m), (e) => bad.push(String(e)));
  return { got, bad };
}

Deno.test("wire: a batch keeps its messages, every field of each and their order", () => {
  const messages: WireMessage[] = [
    { kind: "publish", msg: full },
    { kind: "publish", msg: bare },
    { kind: "publish-shared", share: "$share/g/a/+", hops: 2, msg: full },
    { kind: "publish-to", clientIds: ["s1", "s2"], msg: bare },
    { kind: "publish", msg: { ...bare, id: "n2-2", qos: 1, payload: new Uint8Array(70_000) } },
  ];
  const m: WireMessage = { kind: "batch", messages };
  assert.deepStrictEqual(roundTrip(m), m);
  // The outbox's way: frames encoded once each, then put together without re-encoding.
  const batch = encodeBatch(messages.map(encodeWire));
  assert.deepStrictEqual(decodeWire(batch), m);
  assert.deepStrictEqual(frames(batch), { got: messages, bad: [] });
});

Deno.test("wire: a lone frame reads as itself through decodeFrames", () => {
  const m: WireMessage = { kind: "publish", msg: full };
  assert.deepStrictEqual(frames(encodeWire(m)), { got: [m], bad: [] });
  assert.deepStrictEqual(frames(encodeBatch([])), { got: [], bad: [] });
});

Deno.test("wire: a batch inside a batch is refused on both ends", () => {
  const inner = encodeBatch([encodeWire({ kind: "publish", msg: bare })]);
  assert.throws(() => encodeBatch([inner]), /batch inside a batch/);
  assert.throws(
    () => encodeWire({ kind: "batch", messages: [{ kind: "batch", messages: [] }] }),
    /batch inside a batch/,
  );
  // Hand-made: tag 11, one frame, which is itself a batch.
  const nested = new Uint8Array([11, 1, inner.byteLength, ...inner]);
  assert.throws(() => decodeWire(nested), /batch inside a batch/);
  const { got, bad } = frames(nested);
  assert.equal(got.length, 0);
  assert.match(bad[0], /batch inside a batch/);
});

Deno.test("wire: a damaged batch yields the messages before the damage and reports it", () => {
  const a: WireMessage = { kind: "publish", msg: full };
  const b: WireMessage = { kind: "publish", msg: bare };
  const batch = encodeBatch([encodeWire(a), encodeWire(b)]);
  const cut = frames(batch.subarray(0, batch.byteLength - 3));
  assert.deepStrictEqual(cut.got, [a]);
  assert.match(cut.bad[0], /truncated/);
  assert.throws(() => decodeWire(batch.subarray(0, batch.byteLength - 3)), /truncated/);
  // An undecodable message inside a batch costs only itself.
  const broken = encodeBatch([new Uint8Array([200]), encodeWire(b)]);
  const r = frames(broken);
  assert.deepStrictEqual(r.got, [b]);
  assert.match(r.bad[0], /unknown cluster message/);
});

Deno.test("wire: a decoded id's parts name the same id as the whole string does", () => {
  const ids = [
    "n1-lq2x3-1",
    "n1-lq2x3-zz9",
    "n1-lq2x3-01",
    "n1-lq2x3-A",
    "n1-lq2x3-",
    "plain",
    "-1",
    "n1-lq2x3-zzzzzzzzzz",
    "n1-lq2x3-zzzzzzzzzzz",
    "ü-1",
    "n1-ü-1",
  ];
  for (const id of ids) {
    const r = new RecentIds(100);
    const frame = encodeWire({ kind: "publish", msg: { ...bare, id } });
    let got: WireMessage | null = null;
    decodeFrames(frame, (m) => got = m, (e) => assert.fail(String(e)));
    assert.equal((got as unknown as { msg: StoredMessage }).msg.id, id);
    assert.equal(r.note(id), undefined);
    if (idParts.counter >= 0) {
      assert.equal(idParts.prefix + idParts.counter.toString(36), id, `${id} splits exactly`);
      assert.equal(r.noteParts(idParts.prefix, idParts.counter), 1, `${id} is known by its parts`);
    } else {
      assert.ok(!/-([1-9a-z][0-9a-z]{0,9}|0)$/.test(id), `${id} has parts`);
    }
  }
});

Deno.test("wire: the id of a message just made is written from its parts, byte for byte as the string", () => {
  for (const node of ["n1", "nöde-ü-1", "x".repeat(200)]) {
    const factory = new MessageFactory(node);
    for (let i = 1; i <= 1300; i++) {
      const msg = factory.create("a/b", new Uint8Array([i & 0xff]), 0, false, "pub-1");
      // Around each new digit, and a few in between.
      if (!(i <= 40 || (i >= 1290 && i <= 1300) || i % 97 === 0)) continue;
      const out = new Out();
      out.buf = Buffer.alloc(forwardBound(msg));
      encodeForwardInto(out, msg);
      const fast = out.buf.subarray(0, out.pos);
      // encodeWire sizes the frame from the id string: the same bytes either way.
      assert.deepStrictEqual(
        new Uint8Array(fast),
        new Uint8Array(encodeWire({ kind: "publish", msg })),
      );
      const back = decodeWire(fast);
      assert.equal(back.kind === "publish" && back.msg.id, msg.id);
    }
  }
  // A message that is not the one just made (an older one, or one decoded from another node)
  // is written from its id string.
  const factory = new MessageFactory("n2");
  const older = factory.create("t", new Uint8Array(0), 1, false, "c");
  factory.create("t", new Uint8Array(0), 1, false, "c");
  const other: StoredMessage = { ...older, id: "" };
  for (const msg of [older, other]) {
    const out = new Out();
    out.buf = Buffer.alloc(forwardBound(msg));
    encodeForwardInto(out, msg);
    const back = decodeWire(out.buf.subarray(0, out.pos));
    assert.equal(back.kind === "publish" && back.msg.id, msg.id);
  }
});

Deno.test("wire: QoS 1 messages decoded for delivery have their delivery marks from the start, others none", () => {
  // A held delivery (QoS 1 only) sets the marks; keys in the object from the start cost no
  // property store of its own.
  const q1 = { ...bare, id: "n2-2", qos: 1 as const };
  const marks = [PENDING_DELIVERIES, PUBLISHER_ACK, PUBLISHER_ACK_ID];
  const symbolsOf = (frame: Uint8Array) => {
    const seen: symbol[][] = [];
    decodeFramesMarked(frame, (m) => {
      if (m.kind === "publish") seen.push(Object.getOwnPropertySymbols(m.msg));
    }, (e) => assert.fail(String(e)));
    return seen;
  };
  const batch = encodeBatch([
    encodeWire({ kind: "publish", msg: q1 }),
    encodeWire({ kind: "publish", msg: bare }),
  ]);
  assert.deepEqual(symbolsOf(batch), [marks, []], "a batch: QoS 1, then QoS 0");
  assert.deepEqual(symbolsOf(encodeWire({ kind: "publish", msg: q1 })), [marks], "a lone frame");
  const factory = new MessageFactory("n");
  const made = (qos: 0 | 1) => factory.create("t", new Uint8Array(1), qos, false, "c");
  assert.deepEqual(Object.getOwnPropertySymbols(made(1)), marks, "a client's QoS 1 message");
  assert.deepEqual(Object.getOwnPropertySymbols(made(0)), [], "a client's QoS 0 message");
  const stored = decodeWire(encodeWire({ kind: "publish", msg: q1 }));
  assert.deepEqual(stored.kind === "publish" && Object.getOwnPropertySymbols(stored.msg), []);
});
