/** The Redis store's value layouts (src/store/redis_codec.ts), including the earlier JSON one. */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { OutboundEntry, StoredMessage } from "../../src/broker/model.ts";
import {
  decodeEntry,
  decodeMessage,
  encodeEntry,
  encodeMessage,
  encodeValue,
} from "../../src/store/redis_codec.ts";

const enc = new TextEncoder();

function full(): StoredMessage {
  return {
    id: "node-1-lx2k-1a",
    topic: "sensors/küche/🌡",
    payload: enc.encode("21.5"),
    qos: 1,
    retain: true,
    createdAt: 1_796_000_000_123.5,
    expiresAt: 1_796_000_060_123.5,
    origin: "client-ä",
    dup: false,
    properties: {
      payloadFormatIndicator: 1,
      messageExpiryInterval: 60,
      contentType: "text/plain",
      responseTopic: "r/t",
      correlationData: new Uint8Array([0, 1, 255]),
      userProperties: [["k", "v"], ["k", "w"]],
    },
  };
}

function minimal(): StoredMessage {
  return { id: "m", topic: "t", payload: new Uint8Array(0), qos: 0, retain: false, createdAt: 0 };
}

/** What an earlier version wrote for an entry: u32 header length, JSON head, JSON-layout message. */
function jsonLayoutEntry(e: OutboundEntry): Buffer {
  const head: Record<string, unknown> = {
    seq: e.seq,
    qos: e.qos,
    retain: e.retain,
    state: e.state,
  };
  if (e.packetId !== undefined) head.packetId = e.packetId;
  if (e.subscriptionIds !== undefined) head.subscriptionIds = e.subscriptionIds;
  const h = enc.encode(JSON.stringify(head));
  const m = encodeValue(e.message);
  const out = Buffer.alloc(4 + h.byteLength + m.byteLength);
  out.writeUInt32BE(h.byteLength, 0);
  out.set(h, 4);
  out.set(m, 4 + h.byteLength);
  return out;
}

Deno.test("a message with every field survives the binary layout", () => {
  for (
    const m of [full(), minimal(), { ...minimal(), dup: true, payload: new Uint8Array(70_000) }]
  ) {
    const back = decodeMessage(encodeMessage(m));
    assert.deepEqual(back, m);
    assert.ok(!(back.payload instanceof Buffer), "the payload is a plain Uint8Array");
  }
});

Deno.test("an outbound entry with packet id and Subscription Identifiers survives, in each state", () => {
  const states: OutboundEntry["state"][] = ["queued", "sent", "released"];
  for (const state of states) {
    const e: OutboundEntry = {
      seq: 2 ** 40 + 3,
      message: full(),
      qos: 1,
      retain: false,
      state,
      packetId: 65535,
      subscriptionIds: [1, 268_435_455],
    };
    assert.deepEqual(decodeEntry(encodeEntry(e)), e);
  }
  const bare: OutboundEntry = { seq: 1, message: minimal(), qos: 2, retain: true, state: "queued" };
  assert.deepEqual(decodeEntry(encodeEntry(bare)), bare);
});

Deno.test("values in the JSON layout of earlier versions still read", () => {
  const m = full();
  assert.deepEqual(decodeMessage(encodeValue(m)), m);
  const e: OutboundEntry = {
    seq: 7,
    message: m,
    qos: 1,
    retain: false,
    state: "sent",
    packetId: 9,
    subscriptionIds: [4],
  };
  assert.deepEqual(decodeEntry(jsonLayoutEntry(e)), e);
});

Deno.test("a truncated stored entry is an error, not a short read", () => {
  const b = encodeEntry({ seq: 1, message: full(), qos: 1, retain: false, state: "queued" });
  // Cut inside the message's fixed fields (the payload runs to the end, so any length reads).
  assert.throws(() => decodeEntry(b.subarray(0, 12)), /truncated/);
});
