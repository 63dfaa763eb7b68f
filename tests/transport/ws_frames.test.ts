/** The RFC 6455 frame codec: what client frames decode to, and which ones close the connection. */
import assert from "node:assert/strict";
import {
  closePayload,
  encodeFrame,
  FrameDecoder,
  type FrameHandler,
  frameHeader,
  Opcode,
} from "../../src/transport/ws_frames.ts";
import { clientFrame } from "./helpers.ts";

function decoder(max = 1024) {
  const got = {
    binary: [] as number[],
    pieces: 0,
    texts: 0,
    pings: [] as number[][],
    closes: [] as [number | undefined, string][],
    errors: [] as [number, string][],
  };
  const handler: FrameHandler = {
    onBinary(piece) {
      got.binary.push(...piece);
      got.pieces++;
    },
    onText() {
      got.texts++;
    },
    onPing(p) {
      got.pings.push([...p]);
    },
    onClose(code, reason) {
      got.closes.push([code, reason]);
    },
    onError(code, why) {
      got.errors.push([code, why]);
    },
  };
  return { d: new FrameDecoder(max, handler), got };
}

const bytes = (...b: number[]) => new Uint8Array(b);
const join = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, (o += p.length) - p.length);
  return out;
};

Deno.test("binary frames are unmasked however the bytes are split (RFC 6455 5.2, 5.3)", () => {
  const payload = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  const all = join(clientFrame(Opcode.Binary, payload), clientFrame(Opcode.Binary, bytes(7, 8)));
  for (const step of [1, 3, 7, 64, all.length]) {
    const { d, got } = decoder();
    for (let i = 0; i < all.length; i += step) d.push(all.slice(i, i + step));
    assert.deepEqual(got.binary, [...payload, 7, 8], `chunks of ${step}`);
    assert.deepEqual(got.errors, []);
  }
});

Deno.test("binary payload is handed on as views into the pushed chunk, not copies", () => {
  let seen: Uint8Array | undefined;
  const chunk = clientFrame(Opcode.Binary, bytes(1, 2, 3));
  const d = new FrameDecoder(1024, {
    onBinary: (p) => seen = p,
    onText() {},
    onPing() {},
    onClose() {},
    onError() {},
  });
  d.push(chunk);
  assert.equal(seen!.buffer, chunk.buffer);
  assert.deepEqual([...seen!], [1, 2, 3]);
});

Deno.test("a fragmented binary message arrives in order with a ping between fragments (5.4)", () => {
  const { d, got } = decoder();
  d.push(join(
    clientFrame(Opcode.Binary, bytes(1, 2), false),
    clientFrame(Opcode.Ping, bytes(9)),
    clientFrame(Opcode.Continuation, bytes(3), false),
    clientFrame(Opcode.Continuation, bytes(4), true),
    clientFrame(Opcode.Binary, bytes(5)),
  ));
  assert.deepEqual(got.binary, [1, 2, 3, 4, 5]);
  assert.deepEqual(got.pings, [[9]]);
  assert.deepEqual(got.errors, []);
});

Deno.test("a client frame that is not masked is closed with 1002 (5.1)", () => {
  const { d, got } = decoder();
  d.push(encodeFrame(Opcode.Binary, bytes(1)));
  assert.equal(got.errors[0][0], 1002);
  assert.deepEqual(got.binary, []);
});

Deno.test("a frame announcing more than the limit is closed with 1009 before its payload (5.2)", () => {
  const { d, got } = decoder(100);
  // Only the header of a 1000-byte frame: the decision may not wait for the payload.
  d.push(clientFrame(Opcode.Binary, new Uint8Array(1000)).subarray(0, 8));
  assert.equal(got.errors[0][0], 1009);
  assert.equal(got.pieces, 0);
});

Deno.test("a 64-bit length with its top bit set is closed with 1002 (5.2)", () => {
  const { d, got } = decoder();
  d.push(bytes(0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0));
  assert.equal(got.errors[0][0], 1002);
});

Deno.test("reserved bits, unknown opcodes and non-minimal lengths are closed with 1002 (5.2)", () => {
  const rsv = clientFrame(Opcode.Binary, bytes(1));
  rsv[0] |= 0x40;
  const unknown = clientFrame(0x3, bytes(1));
  const nonMinimal = bytes(0x82, 0x80 | 126, 0, 5, 0, 0, 0, 0, 1, 2, 3, 4, 5);
  for (const frame of [rsv, unknown, nonMinimal]) {
    const { d, got } = decoder();
    d.push(frame);
    assert.equal(got.errors[0]?.[0], 1002);
  }
});

Deno.test("a continuation without a message, or a new message inside one, is a 1002 (5.4)", () => {
  const a = decoder();
  a.d.push(clientFrame(Opcode.Continuation, bytes(1)));
  assert.equal(a.got.errors[0][0], 1002);
  const b = decoder();
  b.d.push(join(clientFrame(Opcode.Binary, bytes(1), false), clientFrame(Opcode.Binary, bytes(2))));
  assert.equal(b.got.errors[0][0], 1002);
});

Deno.test("control frames must be final and at most 125 bytes (5.5)", () => {
  const a = decoder();
  a.d.push(clientFrame(Opcode.Ping, bytes(1), false));
  assert.equal(a.got.errors[0][0], 1002);
  const b = decoder();
  b.d.push(clientFrame(Opcode.Ping, new Uint8Array(126)));
  assert.equal(b.got.errors[0][0], 1002);
});

Deno.test("a text message is reported and skipped, and a later close frame still decodes", () => {
  const { d, got } = decoder();
  d.push(join(
    clientFrame(Opcode.Text, new TextEncoder().encode("hi"), false),
    clientFrame(Opcode.Continuation, bytes(0x21)),
    clientFrame(Opcode.Close, closePayload(1000, "bye")),
  ));
  assert.equal(got.texts, 1);
  assert.deepEqual(got.binary, []);
  assert.deepEqual(got.closes, [[1000, "bye"]]);
});

Deno.test("close frames: empty, with a code and reason, or invalid (5.5.1, 7.4)", () => {
  const empty = decoder();
  empty.d.push(clientFrame(Opcode.Close, bytes()));
  assert.deepEqual(empty.got.closes, [[undefined, ""]]);
  const oneByte = decoder();
  oneByte.d.push(clientFrame(Opcode.Close, bytes(3)));
  assert.equal(oneByte.got.errors[0][0], 1002);
  const badCode = decoder();
  badCode.d.push(clientFrame(Opcode.Close, closePayload(1005)));
  assert.equal(badCode.got.errors[0][0], 1002);
  const badUtf8 = decoder();
  badUtf8.d.push(clientFrame(Opcode.Close, bytes(0x03, 0xe8, 0xff)));
  assert.equal(badUtf8.got.errors[0][0], 1007);
  assert.deepEqual(badUtf8.got.closes, []);
});

Deno.test("nothing is decoded after a close frame or an error", () => {
  const { d, got } = decoder();
  d.push(join(clientFrame(Opcode.Close, bytes()), clientFrame(Opcode.Binary, bytes(1))));
  assert.deepEqual(got.binary, []);
  assert.ok(d.stopped);
});

Deno.test("server frames are unmasked and use the shortest length encoding (5.2)", () => {
  assert.deepEqual([...frameHeader(Opcode.Binary, 125)], [0x82, 125]);
  assert.deepEqual([...frameHeader(Opcode.Binary, 126)], [0x82, 126, 0, 126]);
  assert.deepEqual([...frameHeader(Opcode.Binary, 65536)], [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
  assert.deepEqual([...encodeFrame(Opcode.Pong, bytes(1, 2))], [0x8a, 2, 1, 2]);
  assert.deepEqual([...closePayload(1002, "x")], [0x03, 0xea, 0x78]);
});
