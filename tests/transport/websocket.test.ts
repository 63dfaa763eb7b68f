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
