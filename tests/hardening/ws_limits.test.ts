/**
 * Finding 4 of issue 16, end to end: WebSocket frames must be judged by their header, not read
 * first. A frame announcing 60 MiB is refused (close 1009) before its payload is buffered, so
 * eight of them leave the broker's memory where it was; unmasked client frames are closed with
 * 1002; a bad Sec-WebSocket-Key gets HTTP 400 and version 8 HTTP 426 (RFC 6455 sections 4.2.1,
 * 4.2.2, 5.1, 7.4.1).
 *
 * MQTTWK_HARDENING_ROOT=<checkout> runs these against another checkout's main.ts (the code from
 * before the rewrite fails all four).
 */
import assert from "node:assert/strict";
import { waitFor } from "../helpers/wait.ts";
import { type BrokerProcess, mib, RssSampler, startBrokerProcess } from "./broker_process.ts";
import { clientFrame, ServerStream, upgradeRequest } from "./ws_wire.ts";

const MiB = 1048576;
/** How far RSS may move while eight 60 MiB frames are refused: allocator noise, not payload. */
const RSS_SLACK = 8 * MiB;

/** A raw WebSocket connection: what it sent, and the server's answer as it arrives. */
interface RawWs {
  conn: Deno.TcpConn;
  answer: ServerStream;
  /** True once the server closed the TCP connection (EOF or reset). */
  eof: boolean;
  /** Writes, ignoring a broken pipe (the server may close first). Returns false if broken. */
  send(b: Uint8Array): Promise<boolean>;
  close(): void;
}

async function rawWs(b: BrokerProcess, headers: Record<string, string> = {}): Promise<RawWs> {
  const conn = await Deno.connect({ hostname: b.host, port: b.wsPort! });
  const answer = new ServerStream();
  let closed = false;
  const ws: RawWs = {
    conn,
    answer,
    eof: false,
    async send(bytes) {
      try {
        let at = 0;
        while (at < bytes.length) at += await conn.write(bytes.subarray(at));
        return true;
      } catch {
        return false;
      }
    },
    close() {
      if (!closed) {
        closed = true;
        conn.close();
      }
    },
  };
  (async () => {
    const buf = new Uint8Array(65536);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        answer.push(buf.subarray(0, n));
      }
    } catch { /* reset or closed by us */ }
    ws.eof = true;
  })();
  await ws.send(upgradeRequest(b.wsPath, headers));
  return ws;
}

function upgraded(ws: RawWs): Promise<true> {
  return waitFor(() => {
    if (ws.answer.status !== undefined && ws.answer.status !== 101) {
      throw new Error(`upgrade refused: ${ws.answer.head}`);
    }
    return ws.answer.status === 101;
  }, { what: "the upgrade", timeout: 5_000 });
}

/** Announces a frame of `size` bytes and streams its payload until the server stops it. */
async function announceHuge(ws: RawWs, size: number): Promise<number> {
  const header = clientFrame(0x2, new Uint8Array(0), { announce: size, mask: new Uint8Array(4) });
  if (!await ws.send(header)) return 0;
  const piece = new Uint8Array(256 * 1024);
  let sent = 0;
  while (sent < size && !ws.answer.closed && !ws.eof) {
    if (!await ws.send(piece.subarray(0, Math.min(piece.length, size - sent)))) break;
    sent += Math.min(piece.length, size - sent);
  }
  return sent;
}

Deno.test({
  name: "oversized, unmasked and badly upgraded WebSocket connections are refused by the RFC " +
    "6455 rules, and huge frames never reach memory",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const broker = await startBrokerProcess({ websocket: true });
  try {
    await t.step(
      "eight frames announcing 60 MiB each are closed with 1009 and RSS stays flat",
      async () => {
        // One full upgrade first, so the baseline includes what the first connection allocates.
        const warm = await rawWs(broker);
        await upgraded(warm);
        warm.close();
        const rss = new RssSampler(broker, 20);
        const before = rss.sample();
        const t0 = performance.now();
        const conns = await Promise.all(Array.from({ length: 8 }, () => rawWs(broker)));
        await Promise.all(conns.map(upgraded));
        const sent = await Promise.all(conns.map((c) => announceHuge(c, 60 * MiB)));
        await waitFor(() => conns.every((c) => c.answer.closed || c.eof), {
          what: "the broker to close the eight connections",
          timeout: 30_000,
        });
        const closedMs = performance.now() - t0;
        rss.stop();
        const codes = conns.map((c) => c.answer.closeCode);
        for (const c of conns) c.close();
        console.log(
          `60 MiB frames: 8 connections, payload bytes written before the close ` +
            `${sent.map((s) => mib(s)).join("/")} MiB, close codes ${codes.join(",")}, ` +
            `closed within ${closedMs.toFixed(0)} ms; broker RSS before ${mib(before)} MiB, ` +
            `peak ${mib(rss.peak)} MiB, after ${mib(rss.last)} MiB ` +
            `(growth ${mib(rss.peak - before)} MiB, limit ${mib(RSS_SLACK)} MiB)`,
        );
        assert.ok(rss.peak - before <= RSS_SLACK, `RSS grew by ${mib(rss.peak - before)} MiB`);
        assert.deepEqual(codes, Array(8).fill(1009), "each connection is closed with 1009");
      },
    );

    await t.step("an unmasked client frame is closed with 1002", async () => {
      const ws = await rawWs(broker);
      await upgraded(ws);
      const connect = Uint8Array.of(0x10, 12, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 60, 0, 0);
      await ws.send(clientFrame(0x2, connect, { masked: false }));
      await waitFor(() => ws.eof, { what: "the broker to close", timeout: 5_000 });
      console.log(
        `unmasked frame: close code ${ws.answer.closeCode}, MQTT bytes answered ` +
          `${ws.answer.binary().length}`,
      );
      ws.close();
      assert.equal(ws.answer.closeCode, 1002);
      assert.equal(ws.answer.binary().length, 0, "the unmasked CONNECT is not served");
    });

    await t.step("a Sec-WebSocket-Key that is not 16 bytes in base64 gets HTTP 400", async () => {
      const ws = await rawWs(broker, { "sec-websocket-key": "c2hvcnQ=" });
      await waitFor(() => ws.answer.status, { what: "an HTTP answer", timeout: 5_000 });
      console.log(`bad key: ${ws.answer.head.split("\r\n")[0]}`);
      ws.close();
      assert.equal(ws.answer.status, 400);
    });

    await t.step("Sec-WebSocket-Version 8 gets HTTP 426 naming version 13", async () => {
      const ws = await rawWs(broker, { "sec-websocket-version": "8" });
      await waitFor(() => ws.answer.status, { what: "an HTTP answer", timeout: 5_000 });
      console.log(`version 8: ${ws.answer.head.replaceAll("\r\n", " | ")}`);
      ws.close();
      assert.equal(ws.answer.status, 426);
      assert.match(ws.answer.head, /sec-websocket-version: 13/i);
    });
    assert.equal(broker.exited(), undefined, "the broker is still running");
  } finally {
    await broker.stop();
  }
});
