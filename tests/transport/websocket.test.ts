import assert from "node:assert/strict";
import { silentLogger } from "../../src/log.ts";
import { fromWebSocket, readLimit } from "../../src/transport/websocket.ts";

/** Just enough of a server-side WebSocket to drive the adapter. */
function fakeSocket() {
  const sock = {
    binaryType: "blob",
    readyState: 1,
    bufferedAmount: 0,
    closedWith: undefined as number | undefined,
    sent: [] as Uint8Array[],
    onmessage: null as ((e: { data: unknown }) => void) | null,
    onclose: null as (() => void) | null,
    onerror: null as (() => void) | null,
    send(b: Uint8Array) {
      this.sent.push(b);
    },
    close(code = 1000) {
      this.closedWith = code;
      this.readyState = 3;
    },
  };
  return sock;
}

Deno.test("a WebSocket whose unread bytes exceed the limit is closed and the stream fails", async () => {
  const sock = fakeSocket();
  const conn = fromWebSocket(sock as unknown as WebSocket, "192.0.2.1:1", "ws", silentLogger, {
    maxQueuedBytes: 1000,
  });
  sock.onmessage!({ data: new ArrayBuffer(600) });
  assert.equal(sock.closedWith, undefined, "under the limit nothing happens");
  sock.onmessage!({ data: new ArrayBuffer(600) });
  assert.equal(sock.closedWith, 1009);
  const reader = conn.readable.getReader();
  await assert.rejects(async () => {
    while (!(await reader.read()).done) { /* drain */ }
  });
});

Deno.test("the WebSocket read limit is twice the largest packet, at least 64 KiB", () => {
  assert.equal(readLimit(1024 * 1024), 2 * 1024 * 1024);
  assert.equal(readLimit(100), 64 * 1024);
});

Deno.test("binary frames reach the broker in order and a text frame ends the stream", async () => {
  const sock = fakeSocket();
  const conn = fromWebSocket(sock as unknown as WebSocket, "192.0.2.1:1", "ws", silentLogger);
  sock.onmessage!({ data: new Uint8Array([1, 2]).buffer });
  sock.onmessage!({ data: new Uint8Array([3]).buffer });
  sock.onmessage!({ data: "text" });
  assert.equal(sock.closedWith, 1003);
  const got: number[] = [];
  for await (const chunk of conn.readable) got.push(...chunk);
  assert.deepEqual(got, [1, 2, 3]);
});

/** Records what the raw path delivers. */
function recorder() {
  const r = {
    bytes: [] as number[],
    ends: [] as (Error | undefined)[],
    onData(chunk: Uint8Array) {
      r.bytes.push(...chunk);
    },
    onEnd(err?: Error) {
      r.ends.push(err);
    },
  };
  return r;
}

Deno.test("the raw path delivers frames that came before start, holds them while paused", () => {
  const sock = fakeSocket();
  const conn = fromWebSocket(sock as unknown as WebSocket, "192.0.2.1:1", "ws", silentLogger, {
    maxQueuedBytes: 1000,
  });
  sock.onmessage!({ data: new Uint8Array([1]).buffer });
  const rec = recorder();
  conn.raw!.start(rec);
  assert.deepEqual(rec.bytes, [1], "a frame from before start comes first");
  conn.raw!.pause();
  sock.onmessage!({ data: new Uint8Array([2]).buffer });
  sock.onmessage!({ data: new Uint8Array([3]).buffer });
  assert.deepEqual(rec.bytes, [1], "nothing is delivered while paused");
  conn.raw!.resume();
  assert.deepEqual(rec.bytes, [1, 2, 3]);
  sock.onmessage!({ data: new Uint8Array([4]).buffer });
  assert.deepEqual(rec.bytes, [1, 2, 3, 4]);
  sock.onclose!();
  assert.deepEqual(rec.ends, [undefined]);
});

Deno.test("the raw path closes a paused connection whose unread bytes exceed the limit", () => {
  const sock = fakeSocket();
  const conn = fromWebSocket(sock as unknown as WebSocket, "192.0.2.1:1", "ws", silentLogger, {
    maxQueuedBytes: 1000,
  });
  const rec = recorder();
  conn.raw!.start(rec);
  conn.raw!.pause();
  sock.onmessage!({ data: new ArrayBuffer(600) });
  assert.equal(sock.closedWith, undefined);
  sock.onmessage!({ data: new ArrayBuffer(600) });
  assert.equal(sock.closedWith, 1009);
  assert.equal(rec.ends.length, 1);
  assert.match(rec.ends[0]!.message, /limit exceeded/);
  sock.onclose!();
  assert.equal(rec.ends.length, 1, "the end is reported once");
});

Deno.test("a raw write waits while the browser is behind and fails if the socket closes", async () => {
  const sock = fakeSocket();
  const conn = fromWebSocket(sock as unknown as WebSocket, "192.0.2.1:1", "ws", silentLogger);
  assert.equal(conn.raw!.write(new Uint8Array([1])), undefined, "taken at once");
  sock.bufferedAmount = 1024 * 1024;
  const wait = conn.raw!.write(new Uint8Array([2]));
  assert.ok(wait instanceof Promise);
  setTimeout(() => sock.bufferedAmount = 0, 20);
  await wait;
  assert.equal(conn.raw!.write(new Uint8Array([3])), undefined, "room again");
  sock.bufferedAmount = 1024 * 1024;
  const stuck = conn.raw!.write(new Uint8Array([4]))!;
  sock.close();
  await assert.rejects(stuck, /closed/);
  await assert.rejects(Promise.resolve().then(() => conn.raw!.write(new Uint8Array([5]))));
  assert.equal(sock.sent.length, 4);
});
