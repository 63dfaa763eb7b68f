/** The WebSocket server on a connection's raw path, driven through a fake socket. */
import assert from "node:assert/strict";
import { silentLogger } from "../../src/log.ts";
import type { ByteConnection, RawIo, RawSink } from "../../src/broker/ports/connection.ts";
import { maxFrameSize, MQTT_SUBPROTOCOLS } from "../../src/transport/websocket.ts";
import { serveWebSocket, type WsServerOptions } from "../../src/transport/ws_connection.ts";
import { closePayload, Opcode } from "../../src/transport/ws_frames.ts";
import { clientFrame, upgradeRequest } from "./helpers.ts";

/** Just enough of an accepted socket: records writes, pauses and the close. */
function fakeSocket(identity: { peerCertificateCN?: string; username?: string } = {}) {
  const { promise: closed, resolve } = Promise.withResolvers<void>();
  const state = {
    sink: null as RawSink | null,
    written: [] as Uint8Array[],
    paused: false,
  };
  const raw: RawIo = {
    start: (sink) => state.sink = sink,
    pause: () => state.paused = true,
    resume: () => state.paused = false,
    write: (b) => void state.written.push(b),
  };
  const s = {
    get sink() {
      return state.sink;
    },
    written: state.written,
    get paused() {
      return state.paused;
    },
    isClosed: false,
    closed,
    remoteAddress: "192.0.2.1:1234",
    transport: "tcp",
    ...identity,
    raw,
    readable: new ReadableStream<Uint8Array>(),
    writable: new WritableStream<Uint8Array>(),
    close() {
      s.isClosed = true;
      resolve();
    },
    /** The first write (an HTTP answer) as text. */
    text: () => new TextDecoder().decode(state.written[0]),
  };
  return s;
}

const options = (over: Partial<WsServerOptions> = {}): WsServerOptions => ({
  transport: "ws",
  path: "/mqtt",
  subprotocols: MQTT_SUBPROTOCOLS,
  maxFrameSize: 1024,
  handshakeTimeoutMs: 5_000,
  trustedProxies: [],
  log: silentLogger,
  ...over,
});

/** A connection past its handshake, with the core's side recorded. */
function upgraded(over: Partial<WsServerOptions> = {}, identity = {}) {
  const sock = fakeSocket(identity);
  let conn: ByteConnection | undefined;
  serveWebSocket(sock, options(over), (c) => conn = c);
  sock.sink!.onData(new TextEncoder().encode(upgradeRequest()));
  assert.ok(conn, "the upgraded connection is handed on");
  assert.match(sock.text(), /^HTTP\/1\.1 101 /);
  sock.written.length = 0;
  const core = {
    bytes: [] as number[],
    ends: [] as (Error | undefined)[],
    onData(chunk: Uint8Array) {
      core.bytes.push(...chunk);
    },
    onEnd(err?: Error) {
      core.ends.push(err);
    },
  };
  return { sock, conn: conn!, core };
}

const tick = () => new Promise<void>((r) => queueMicrotask(r));

Deno.test("the frame limit is twice the largest packet, at least 64 KiB", () => {
  assert.equal(maxFrameSize(1024 * 1024), 2 * 1024 * 1024);
  assert.equal(maxFrameSize(100), 64 * 1024);
});

Deno.test("a client that never finishes its upgrade request is answered 408 and closed", async () => {
  const sock = fakeSocket();
  serveWebSocket(sock, options({ handshakeTimeoutMs: 10 }), () => assert.fail("not upgraded"));
  sock.sink!.onData(new TextEncoder().encode("GET /mqtt HTTP/1.1\r\n"));
  await sock.closed;
  assert.match(sock.text(), /^HTTP\/1\.1 408 /);
});

Deno.test("a request for another path is answered 404 and closed", async () => {
  const sock = fakeSocket();
  serveWebSocket(sock, options(), () => assert.fail("not upgraded"));
  sock.sink!.onData(new TextEncoder().encode(upgradeRequest("/elsewhere")));
  await sock.closed;
  assert.match(sock.text(), /^HTTP\/1\.1 404 /);
});

Deno.test("frames that came with or after the upgrade wait until the core starts reading", async () => {
  const { sock, conn, core } = upgraded();
  assert.ok(sock.paused, "the socket is paused until the core reads");
  sock.sink!.onData(clientFrame(Opcode.Binary, new Uint8Array([1, 2])));
  conn.raw!.start(core);
  await tick();
  assert.deepEqual(core.bytes, [1, 2]);
  assert.ok(!sock.paused);
  conn.raw!.pause();
  assert.ok(sock.paused, "the core's pause reaches the socket");
  conn.raw!.resume();
  sock.sink!.onData(clientFrame(Opcode.Binary, new Uint8Array([3])));
  assert.deepEqual(core.bytes, [1, 2, 3]);
});

Deno.test("a ping is answered with a pong carrying the same payload (RFC 6455 5.5.2)", async () => {
  const { sock, conn, core } = upgraded();
  conn.raw!.start(core);
  await tick();
  sock.sink!.onData(clientFrame(Opcode.Ping, new Uint8Array([7, 8])));
  assert.deepEqual([...sock.written[0]], [0x8a, 2, 7, 8]);
});

Deno.test("a client's close is echoed, the core sees the end, the socket closes (5.5.1)", async () => {
  const { sock, conn, core } = upgraded();
  conn.raw!.start(core);
  await tick();
  sock.sink!.onData(clientFrame(Opcode.Close, closePayload(1001)));
  assert.deepEqual([...sock.written[0]], [0x88, 2, 0x03, 0xe9]);
  assert.deepEqual(core.ends, [undefined]);
  await sock.closed;
});

Deno.test("closing from the core sends 1000 and waits for the client's close frame (7.1.2)", async () => {
  const { sock, conn, core } = upgraded();
  conn.raw!.start(core);
  await tick();
  conn.close();
  assert.deepEqual([...sock.written[0]], [0x88, 2, 0x03, 0xe8]);
  assert.ok(!sock.isClosed, "the client answers first");
  sock.sink!.onData(clientFrame(Opcode.Close, closePayload(1000)));
  await sock.closed;
});

Deno.test("a text frame is answered with close 1003 and the core sees an end", async () => {
  const { sock, conn, core } = upgraded();
  conn.raw!.start(core);
  await tick();
  sock.sink!.onData(clientFrame(Opcode.Text, new TextEncoder().encode("hi")));
  assert.equal(sock.written[0][0], 0x88);
  assert.deepEqual([...sock.written[0].subarray(2, 4)], [0x03, 0xeb]);
  assert.equal(core.ends.length, 1);
  assert.deepEqual(core.bytes, []);
});

Deno.test("a frame over the limit is closed with 1009 and its payload never reaches the core", async () => {
  const { sock, conn, core } = upgraded({ maxFrameSize: 100 });
  conn.raw!.start(core);
  await tick();
  sock.sink!.onData(clientFrame(Opcode.Binary, new Uint8Array(200)));
  assert.deepEqual([...sock.written[0].subarray(2, 4)], [0x03, 0xf1]);
  assert.deepEqual(core.bytes, []);
  assert.match(core.ends[0]!.message, /exceeds 100/);
  await sock.closed;
});

Deno.test("small writes go out as one frame, large ones as a header and the payload itself", () => {
  const { sock, conn } = upgraded();
  conn.raw!.write(new Uint8Array([1, 2, 3]));
  assert.deepEqual([...sock.written[0]], [0x82, 3, 1, 2, 3]);
  const big = new Uint8Array(100_000);
  conn.raw!.write(big);
  assert.deepEqual([...sock.written[1]], [0x82, 127, 0, 0, 0, 0, 0, 1, 0x86, 0xa0]);
  assert.equal(sock.written[2], big, "the payload is not copied");
});

Deno.test("the certificate identity and trusted X-Forwarded-For carry over to the connection", () => {
  const sock = fakeSocket({ peerCertificateCN: "alice", username: "alice" });
  let conn: ByteConnection | undefined;
  serveWebSocket(sock, options({ transport: "wss", trustedProxies: [() => true] }), (c) => {
    conn = c;
  });
  const request = upgradeRequest("/mqtt", { "x-forwarded-for": "198.51.100.7" });
  sock.sink!.onData(new TextEncoder().encode(request));
  assert.equal(conn!.transport, "wss");
  assert.equal(conn!.username, "alice");
  assert.equal(conn!.peerCertificateCN, "alice");
  assert.equal(conn!.remoteAddress, "198.51.100.7:1234");
});
