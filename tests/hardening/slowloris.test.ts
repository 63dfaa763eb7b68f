/**
 * Slowloris: a CONNECT (or a WebSocket upgrade) trickled one byte at a time is never allowed to
 * hold its connection past the connect timeout, whatever it sends meanwhile; a client that
 * connects normally is served throughout.
 */
import assert from "node:assert/strict";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { waitFor } from "../helpers/wait.ts";
import { type BrokerProcess, startBrokerProcess } from "./broker_process.ts";
import { clientFrame, ServerStream, upgradeRequest } from "./ws_wire.ts";

const TIMEOUT_S = 2;
const CONNECTIONS = 10;
/** Between two trickled bytes: the whole CONNECT would take several times the timeout. */
const TRICKLE_MS = 250;
/** After the timeout, the close may lag by the broker's timer tick and a loaded machine. */
const LATE_MS = 1_500;

/** A valid MQTT 3.1.1 CONNECT, client id "slow". */
const CONNECT = Uint8Array.of(
  0x10,
  16,
  0,
  4,
  0x4d,
  0x51,
  0x54,
  0x54,
  4,
  2,
  0,
  60,
  0,
  4,
  0x73,
  0x6c,
  0x6f,
  0x77,
); // deno-fmt-ignore

interface Trickled {
  /** From the TCP connect to the broker's close, in ms. */
  closedAfterMs: number;
  /** From the TCP connect to the broker's WebSocket close frame, if one came. */
  closeFrameAfterMs: number | undefined;
  bytesSent: number;
  received: Uint8Array;
}

/**
 * Opens a connection to `port`, sends `prefix` at once, then the bytes of `slow` one write at a
 * time, TRICKLE_MS apart, until the broker closes it.
 */
async function trickle(
  b: BrokerProcess,
  port: number,
  prefix: Uint8Array[],
  slow: Uint8Array[],
): Promise<Trickled> {
  const t0 = performance.now();
  const conn = await Deno.connect({ hostname: b.host, port });
  const parts: number[] = [];
  const frames = new ServerStream();
  let closeFrameAfterMs: number | undefined;
  let eof = false;
  const reading = (async () => {
    const buf = new Uint8Array(4096);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        parts.push(...buf.subarray(0, n));
        frames.push(buf.subarray(0, n));
        if (frames.closed) closeFrameAfterMs ??= performance.now() - t0;
      }
    } catch { /* reset: closed too */ }
    eof = true;
    return performance.now() - t0;
  })();
  let sent = 0;
  try {
    for (const p of prefix) {
      await conn.write(p);
      sent += p.length;
    }
    for (const piece of slow) {
      if (eof) break;
      await conn.write(piece);
      sent += piece.length;
      // Pacing: the trickle is what is under test.
      await new Promise((r) => setTimeout(r, TRICKLE_MS));
    }
  } catch { /* the broker closed first */ }
  const closedAfterMs = await waitFor(() => eof && reading, {
    what: "the broker to close the trickling connection",
    timeout: TIMEOUT_S * 1000 + LATE_MS + 10_000,
  });
  conn.close();
  return {
    closedAfterMs: await closedAfterMs,
    closeFrameAfterMs,
    bytesSent: sent,
    received: Uint8Array.from(parts),
  };
}

function bytesOneByOne(b: Uint8Array): Uint8Array[] {
  return [...b].map((x) => Uint8Array.of(x));
}

function spread(times: number[]): string {
  const t = times.slice().sort((a, b) => a - b);
  return `min ${t[0].toFixed(0)} / median ${t[t.length >> 1].toFixed(0)} / max ${
    t[t.length - 1].toFixed(0)
  } ms`;
}

/**
 * Checks that each connection was ended at the connect timeout. Over WebSocket the end is the
 * close frame; the socket itself may stay up to CLOSE_WAIT_MS more (2 s in ws_connection.ts)
 * for the client's close frame (RFC 6455 section 7.1.2), which a slowloris never sends.
 */
function report(what: string, rs: Trickled[], closeWaitMs = 0): void {
  const frames = rs.map((r) => r.closeFrameAfterMs).filter((t) => t !== undefined);
  console.log(
    `${what}: ${rs.length} connections, connect timeout ${TIMEOUT_S} s, ` +
      (frames.length ? `close frame after ${spread(frames)}, ` : "") +
      `socket closed after ${spread(rs.map((r) => r.closedAfterMs))}, ` +
      `bytes trickled before the close ${Math.max(...rs.map((r) => r.bytesSent))} at most`,
  );
  for (const r of rs) {
    const ended = r.closeFrameAfterMs ?? r.closedAfterMs;
    assert.ok(ended >= TIMEOUT_S * 1000 - 100, `closed early: ${ended} ms`);
    assert.ok(
      ended <= TIMEOUT_S * 1000 + LATE_MS,
      `held ${ended.toFixed(0)} ms, past the ${TIMEOUT_S} s connect timeout`,
    );
    assert.ok(
      r.closedAfterMs <= TIMEOUT_S * 1000 + closeWaitMs + LATE_MS,
      `socket held ${r.closedAfterMs.toFixed(0)} ms`,
    );
  }
}

Deno.test({
  name: "a CONNECT or WebSocket upgrade trickled one byte at a time is closed at the connect " +
    "timeout while normal clients are served",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const broker = await startBrokerProcess({
    websocket: true,
    args: [`--mqttwk.broker.connect-timeout=${TIMEOUT_S}`],
  });
  try {
    await t.step("over TCP", async () => {
      const slow = Promise.all(
        Array.from(
          { length: CONNECTIONS },
          () => trickle(broker, broker.port, [], bytesOneByOne(CONNECT)),
        ),
      );
      // Served meanwhile: the slow connections hold no lock a normal client needs.
      const t0 = performance.now();
      const good = await connectMqttJs(`mqtt://${broker.host}:${broker.port}`);
      await good.subscribe("slow/ok", 1);
      await good.publish("slow/ok", "x", { qos: 1 });
      await good.inbox.waitFor((m) => m.topic === "slow/ok");
      console.log(`a normal client round-tripped in ${(performance.now() - t0).toFixed(0)} ms`);
      await good.close();
      const rs = await slow;
      report("CONNECT trickled over TCP", rs);
      for (const r of rs) assert.equal(r.received.length, 0, "no CONNACK for half a CONNECT");
    });

    await t.step("a WebSocket upgrade request", async () => {
      const rs = await Promise.all(
        Array.from(
          { length: CONNECTIONS },
          () => trickle(broker, broker.wsPort!, [], bytesOneByOne(upgradeRequest(broker.wsPath))),
        ),
      );
      report("upgrade request trickled", rs);
      for (const r of rs) {
        const s = new ServerStream();
        s.push(r.received);
        assert.notEqual(s.status, 101, "half an upgrade is never accepted");
      }
    });

    await t.step("a CONNECT over WebSocket, one byte per frame", async () => {
      const rs = await Promise.all(
        Array.from(
          { length: CONNECTIONS },
          () =>
            trickle(
              broker,
              broker.wsPort!,
              [upgradeRequest(broker.wsPath)],
              bytesOneByOne(CONNECT).map((b) => clientFrame(0x2, b)),
            ),
        ),
      );
      report("CONNECT trickled over WebSocket", rs, 2_000);
      for (const r of rs) {
        const s = new ServerStream();
        s.push(r.received);
        assert.equal(s.status, 101);
        assert.equal(s.binary().length, 0, "no CONNACK for half a CONNECT");
      }
    });
    assert.equal(broker.exited(), undefined, "the broker is still running");
  } finally {
    await broker.stop();
  }
});
