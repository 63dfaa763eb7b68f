/**
 * The outbox batches what a node forwards per target node and event-loop turn. Unit tests with a
 * recording transport (batching is pure logic); the Redis round trip is covered by the cluster
 * e2e tests, which forward through it.
 */
import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import { MAX_BYTES, MAX_FRAMES, Outbox, type OutboxTransport } from "../../src/cluster/outbox.ts";
import { decodeWire, encodeWire, type WireMessage } from "../../src/cluster/wire.ts";
import type { StoredMessage } from "../../src/broker/model.ts";

interface Sent {
  node: string;
  stream: boolean;
  ids: string[];
  settle?: { resolve(): void; reject(e: Error): void };
}

/** A transport that records every command and lets the test answer stream writes. */
function recorder(): { transport: OutboxTransport; sent: Sent[] } {
  const sent: Sent[] = [];
  const ids = (frame: Uint8Array) => {
    const m = decodeWire(frame);
    const list = m.kind === "batch" ? m.messages : [m];
    return list.map((x) => (x as Extract<WireMessage, { kind: "publish" }>).msg.id);
  };
  return {
    sent,
    transport: {
      stream(node, frame) {
        const p = Promise.withResolvers<void>();
        sent.push({ node, stream: true, ids: ids(frame), settle: p });
        return p.promise;
      },
      channel(node, frame) {
        sent.push({ node, stream: false, ids: ids(frame) });
      },
    },
  };
}

function frame(id: string, qos: 0 | 1, size = 10): Uint8Array {
  const msg: StoredMessage = {
    id,
    topic: "t",
    payload: new Uint8Array(size),
    qos,
    retain: false,
    createdAt: 1,
  };
  return encodeWire({ kind: "publish", msg });
}

/**
 * The end of the current event-loop turn: an immediate queued after the outbox's own flush runs
 * after it (a 0 ms timeout may fire before it, when the turn took a millisecond).
 */
const turn = () => new Promise<void>((r) => setImmediate(r));

Deno.test("outbox: one turn's messages for a node leave as one stream entry and one channel message, in order", async () => {
  const { transport, sent } = recorder();
  const out = new Outbox(transport);
  const acks = ["1", "2", "3"].map((id) => out.toStream("b", frame(id, 1)));
  out.toChannel("b", frame("q1", 0));
  out.toChannel("b", frame("q2", 0));
  out.toStream("c", frame("4", 1));
  assert.equal(sent.length, 0, "nothing is sent before the end of the turn");
  await turn();
  assert.deepStrictEqual(sent.map(({ node, stream, ids }) => ({ node, stream, ids })), [
    { node: "b", stream: true, ids: ["1", "2", "3"] },
    { node: "b", stream: false, ids: ["q1", "q2"] },
    { node: "c", stream: true, ids: ["4"] },
  ]);
  // The acks of the batch wait for its XADD, and all settle with it.
  let acked = 0;
  for (const a of acks) a.then(() => acked++);
  await turn();
  assert.equal(acked, 0);
  sent[0].settle!.resolve();
  await turn();
  assert.equal(acked, 3);
  assert.deepStrictEqual([out.batches, out.frames], [3, 6]);
});

Deno.test("outbox: a failed stream write fails every message of its batch, and only those", async () => {
  const { transport, sent } = recorder();
  const out = new Outbox(transport);
  const a = out.toStream("b", frame("1", 1));
  const b = out.toStream("b", frame("2", 1));
  await turn();
  const c = out.toStream("b", frame("3", 1));
  await turn();
  sent[0].settle!.reject(new Error("Redis said no"));
  sent[1].settle!.resolve();
  await assert.rejects(a, /Redis said no/);
  await assert.rejects(b, /Redis said no/);
  await c;
});

Deno.test("outbox: a batch is sent as soon as it is full, earlier messages first", async () => {
  const { transport, sent } = recorder();
  const out = new Outbox(transport);
  for (let i = 0; i < MAX_FRAMES + 5; i++) out.toChannel("b", frame(`s${i}`, 0, 0));
  assert.ok(sent.length >= 1, "a full batch leaves at once");
  for (const s of sent) assert.ok(s.ids.length <= MAX_FRAMES);
  const early = sent.length;
  const big = Math.ceil(MAX_BYTES / 4);
  for (let i = 0; i < 4; i++) out.toStream("b", frame(`b${i}`, 1, big));
  assert.equal(sent.length, early + 1, "a batch of MAX_BYTES left at once");
  await turn();
  const ids = sent.flatMap((s) => s.stream ? s.ids : []);
  assert.deepStrictEqual(ids, ["b0", "b1", "b2", "b3"]);
  const q0 = sent.flatMap((s) => s.stream ? [] : s.ids);
  assert.deepStrictEqual(q0, Array.from({ length: MAX_FRAMES + 5 }, (_, i) => `s${i}`));
  // A message larger than a batch goes alone, as its own frame.
  sent.length = 0;
  out.toStream("b", frame("huge", 1, MAX_BYTES * 2));
  assert.deepStrictEqual(sent.map((s) => s.ids), [["huge"]]);
  await turn();
  assert.equal(sent.length, 1);
});

Deno.test("outbox: messages encoded straight into a batch read back whole, alone, batched and copied", async () => {
  const sent: { node: string; stream: boolean; frame: Uint8Array }[] = [];
  const out = new Outbox({
    stream(node, frame) {
      sent.push({ node, stream: true, frame: new Uint8Array(frame) });
      return Promise.resolve();
    },
    channel(node, frame) {
      sent.push({ node, stream: false, frame: new Uint8Array(frame) });
    },
  });
  const msg = (id: string, qos: 0 | 1, size = 10): StoredMessage => ({
    id,
    topic: "a/ü/t",
    payload: new Uint8Array(size).fill(7),
    qos,
    retain: true,
    createdAt: 5,
    origin: "client-1",
    properties: { userProperties: [["k", "v"]], correlationData: new Uint8Array([1, 2]) },
  });
  const messages = (frame: Uint8Array) => {
    const m = decodeWire(frame);
    return m.kind === "batch" ? m.messages : [m];
  };
  // Alone: the frame itself, no batch around it.
  const lone = msg("n-1", 1);
  const acked = out.streamMessage("b", lone);
  await turn();
  await acked;
  assert.deepStrictEqual(messages(sent[0].frame), [{ kind: "publish", msg: lone }]);
  assert.notEqual(sent[0].frame[0], 11, "not a batch");
  // Several, one shared, and a copy for a second node.
  sent.length = 0;
  const a = msg("n-2", 0);
  const b = msg("n-3", 0, 70_000);
  out.channelMessage("b", a);
  out.toChannel("c", out.last);
  out.channelMessage("b", b, "$share/g/t", 1);
  await turn();
  assert.deepStrictEqual(sent.map((s) => [s.node, messages(s.frame)]), [
    ["b", [{ kind: "publish", msg: a }, {
      kind: "publish-shared",
      share: "$share/g/t",
      hops: 1,
      msg: b,
    }]],
    ["c", [{ kind: "publish", msg: a }]],
  ]);
  // Larger than a three-byte length: encoded on its own, then copied in.
  sent.length = 0;
  const huge = msg("n-4", 1, 2 * 1024 * 1024);
  await Promise.all([out.streamMessage("b", huge), turn()]);
  assert.deepStrictEqual(messages(sent[0].frame), [{ kind: "publish", msg: huge }]);
});
