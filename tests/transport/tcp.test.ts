/**
 * The plain TCP listener's two paths, native handles and node:net sockets, held to the same
 * RawIo contract over real sockets.
 */
import assert from "node:assert/strict";
import type { ByteConnection, RawSink } from "../../src/broker/ports/connection.ts";
import { streamRawIo } from "../../src/broker/stream_io.ts";
import { listenTcp } from "../../src/transport/tcp.ts";
import { nativeTcp } from "../../src/transport/tcp_handle.ts";
import { silentLogger as quiet } from "../../src/log.ts";
import { sleep } from "../helpers/broker.ts";
import { waitFor } from "../helpers/wait.ts";

Deno.test("the pinned runtime offers the native TCP handles the listener relies on", () => {
  // Without them plain TCP still works, on Sockets, but idle connections cost ~1 KiB more.
  assert.notEqual(nativeTcp(), null);
});

/** A sink that records what a connection delivers. */
class Recorder implements RawSink {
  bytes: number[] = [];
  ends: (Error | undefined)[] = [];
  onData(chunk: Uint8Array): void {
    for (const b of chunk) this.bytes.push(b);
  }
  onEnd(error?: Error): void {
    this.ends.push(error);
  }
  async until(cond: () => boolean, what: string): Promise<void> {
    await waitFor(cond, {
      what,
      detail: () => `${this.bytes.length} bytes, ${this.ends.length} ends`,
    });
  }
}

/** Waits until the listener has handed over `n` connections. */
function accepted(conns: ByteConnection[], n: number): Promise<true> {
  return waitFor(() => conns.length >= n, {
    what: `${n} accepted connection(s)`,
    detail: () => `${conns.length} accepted`,
  });
}

async function readSome(c: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await c.read(out.subarray(got));
    if (r === null) throw new Error(`EOF after ${got} of ${n} bytes`);
    got += r;
  }
  return out;
}

for (const nativeHandles of [true, false]) {
  const kind = nativeHandles ? "native handles" : "node:net sockets";

  Deno.test(`tcp over ${kind}: bytes both ways, the peer's address, pause and resume`, async () => {
    const conns: ByteConnection[] = [];
    const front = listenTcp({ hostname: "127.0.0.1", port: 0, nativeHandles }, (c) => {
      conns.push(c);
    }, quiet);
    await front.ready;
    const client = await Deno.connect({ hostname: "127.0.0.1", port: front.port });
    try {
      await accepted(conns, 1);
      const conn = conns[0];
      assert.equal(conn.transport, "tcp");
      assert.equal(conn.remoteAddress, `127.0.0.1:${(client.localAddr as Deno.NetAddr).port}`);
      const io = conn.raw!;
      const rec = new Recorder();
      io.start(rec);
      await client.write(new Uint8Array([1, 2, 3]));
      await rec.until(() => rec.bytes.length === 3, "the first bytes");
      assert.deepEqual(rec.bytes, [1, 2, 3]);

      assert.equal(
        io.write(new Uint8Array([9, 8, 7])),
        undefined,
        "a small write is taken at once",
      );
      assert.deepEqual([...await readSome(client, 3)], [9, 8, 7]);

      io.pause();
      await client.write(new Uint8Array([4, 5]));
      await sleep(100); // "nothing is delivered" has no event: a window in which it must not
      assert.equal(rec.bytes.length, 3, "nothing is delivered while paused");
      io.resume();
      await rec.until(() => rec.bytes.length === 5, "the bytes held while paused");
      assert.deepEqual(rec.bytes.slice(3), [4, 5]);
      assert.deepEqual(rec.ends, []);

      client.close();
      await rec.until(() => rec.ends.length > 0, "the end of the stream");
      await sleep(50); // room for a second, wrong end report: its absence has no event
      assert.deepEqual(rec.ends, [undefined], "a clean end is reported once, without an error");
      conn.close();
      await sleep(50); // room for a wrong end report after the close: its absence has no event
      assert.equal(rec.ends.length, 1, "closing afterwards reports nothing more");
    } finally {
      try {
        client.close();
      } catch {
        // closed by the test
      }
      front.close();
    }
  });

  Deno.test(`tcp over ${kind}: a full socket buffer makes the writer wait, a close fails it`, async () => {
    const conns: ByteConnection[] = [];
    const front = listenTcp({ hostname: "127.0.0.1", port: 0, nativeHandles }, (c) => {
      conns.push(c);
    }, quiet);
    await front.ready;
    const slow = await Deno.connect({ hostname: "127.0.0.1", port: front.port });
    const frozen = await Deno.connect({ hostname: "127.0.0.1", port: front.port });
    try {
      await accepted(conns, 2);
      // Accept order follows connect order on loopback.
      const [toSlow, toFrozen] = conns;
      const recSlow = new Recorder();
      const recFrozen = new Recorder();
      toSlow.raw!.start(recSlow);
      toFrozen.raw!.start(recFrozen);

      // 32 MiB is far beyond any loopback socket buffer: the write cannot complete at once.
      const big = 32 * 1024 * 1024;
      const wait = toSlow.raw!.write(new Uint8Array(big).fill(7));
      assert.ok(wait instanceof Promise, "a write the socket cannot take makes the writer wait");
      let settled = false;
      wait.then(() => settled = true, () => settled = true);
      await sleep(100); // that the write stays pending is a matter of time passing
      assert.equal(settled, false, "it waits while the peer does not read");
      const buf = new Uint8Array(1 << 20);
      let got = 0;
      while (got < big) {
        const n = await slow.read(buf);
        if (n === null) throw new Error("EOF");
        got += n;
      }
      await wait;

      const stuck = toFrozen.raw!.write(new Uint8Array(big));
      assert.ok(stuck instanceof Promise);
      toFrozen.close();
      await assert.rejects(stuck, "a write still pending when the connection closes fails");
      await recFrozen.until(() => recFrozen.ends.length === 1, "the end after a local close");
      await assert.rejects(
        Promise.resolve().then(() => toFrozen.raw!.write(new Uint8Array(1))),
        /closed/,
        "writing to a closed connection fails",
      );
    } finally {
      slow.close();
      frozen.close();
      for (const c of conns) c.close();
      front.close();
    }
  });
  Deno.test(`tcp over ${kind}: a write the socket takes later arrives intact after its buffer was dropped`, async () => {
    const conns: ByteConnection[] = [];
    const front = listenTcp({ hostname: "127.0.0.1", port: 0, nativeHandles }, (c) => {
      conns.push(c);
    }, quiet);
    await front.ready;
    const reader = await Deno.connect({ hostname: "127.0.0.1", port: front.port });
    try {
      await accepted(conns, 1);
      conns[0].raw!.start(new Recorder());
      // Like ClientOutput, the writer keeps no reference to what it handed over. The peer does
      // not read yet, so most of it is still to be written when memory churns below.
      const size = 8 * 1024 * 1024;
      const wait = (() => {
        const bytes = new Uint8Array(size);
        for (let i = 0; i < size; i++) bytes[i] = pattern(i);
        return conns[0].raw!.write(bytes);
      })();
      assert.ok(wait instanceof Promise, "the write cannot complete at once");
      // Enough external allocations to make the engine collect unreferenced buffers.
      for (let round = 0; round < 48; round++) new Uint8Array(8 * 1024 * 1024).fill(round);
      await sleep(0);
      for (let round = 0; round < 48; round++) new Uint8Array(8 * 1024 * 1024).fill(round);
      const buf = new Uint8Array(1 << 20);
      let got = 0;
      let firstBad = -1;
      while (got < size) {
        const n = await reader.read(buf);
        if (n === null) break;
        for (let i = 0; i < n && firstBad < 0; i++) {
          if (buf[i] !== pattern(got + i)) firstBad = got + i;
        }
        got += n;
      }
      assert.equal(firstBad, -1, `byte ${firstBad} differs from what was written`);
      assert.equal(got, size, "every byte arrived before the end");
      await wait;
    } finally {
      reader.close();
      for (const c of conns) c.close();
      front.close();
    }
  });
}

/** A byte sequence with no short period, so a shifted or repeated stretch shows. */
function pattern(i: number): number {
  return (i * 31 + (i >> 12) * 7) & 0xff;
}

/** A logger that keeps its warnings. */
function warnings(): { log: typeof quiet; lines: string[] } {
  const lines: string[] = [];
  return { log: { ...quiet, warn: (m: string) => lines.push(m) }, lines };
}

for (const nativeHandles of [true, false]) {
  const kind = nativeHandles ? "native handles" : "node:net sockets";

  Deno.test(`tcp over ${kind} with PROXY protocol: the header names the client, the rest is MQTT`, async () => {
    const conns: ByteConnection[] = [];
    const { log, lines } = warnings();
    const front = listenTcp(
      { hostname: "127.0.0.1", port: 0, nativeHandles, proxyTimeout: 0.3 },
      (c) => conns.push(c),
      log,
    );
    await front.ready;
    const good = await Deno.connect({ hostname: "127.0.0.1", port: front.port });
    const direct = await Deno.connect({ hostname: "127.0.0.1", port: front.port });
    const silent = await Deno.connect({ hostname: "127.0.0.1", port: front.port });
    try {
      // Header and the first bytes after it in one segment: those bytes must not be lost.
      await good.write(
        new TextEncoder().encode("PROXY TCP4 203.0.113.7 10.0.0.1 40000 8885\r\n\x10\x02"),
      );
      await accepted(conns, 1);
      const conn = conns[0];
      assert.equal(conn.remoteAddress, "203.0.113.7:40000");
      const io = conn.raw ?? streamRawIo(conn);
      // Like the broker with a CONNECT to authenticate: it pauses on the first bytes it gets.
      const rec = new Recorder();
      io.start({
        onData: (chunk) => {
          if (rec.bytes.length === 0) io.pause();
          rec.onData(chunk);
        },
        onEnd: (err) => rec.onEnd(err),
      });
      await rec.until(() => rec.bytes.length === 2, "the bytes after the header");
      await good.write(new Uint8Array([3]));
      await sleep(100); // "nothing is delivered" has no event: a window in which it must not
      assert.equal(rec.bytes.length, 2, "a pause on the bytes after the header holds");
      io.resume();
      await rec.until(() => rec.bytes.length === 3, "the next read");
      assert.deepEqual(rec.bytes, [0x10, 0x02, 3]);

      // MQTT straight to a PROXY port: closed at once, logged with the peer; silence times out.
      await direct.write(new Uint8Array([0x10, 0x0c, 0, 4, 0x4d, 0x51, 0x54, 0x54]));
      assert.equal(await direct.read(new Uint8Array(8)), null, "closed without an answer");
      assert.equal(await silent.read(new Uint8Array(8)), null, "closed after the timeout");
      assert.equal(conns.length, 1, "neither is handed to the broker");
      assert.ok(lines.some((l) => /missing PROXY protocol header/.test(l)), lines.join("\n"));
      assert.ok(
        lines.some((l) => /no PROXY protocol header within 300 ms/.test(l)),
        lines.join("\n"),
      );
    } finally {
      for (const c of [good, direct, silent]) c.close();
      for (const c of conns) c.close();
      front.close();
    }
  });
}
