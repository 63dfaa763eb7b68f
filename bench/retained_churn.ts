/**
 * Retained-message churn: sets N retained messages, clears them all, and repeats, printing the
 * broker's RSS after each phase. A broker that frees what it clears stays flat from round to
 * round once the heap has grown to its working size; one that leaks grows every round.
 *
 * Beside RSS it prints where the memory is (the broker's MQTTWK_MEMORY_REPORT, asked for with
 * SIGUSR2): the main isolate's heap used/total and external bytes and, with the SQLite store,
 * the store worker's, and the size of the WAL file. With
 * MQTTWK_BENCH_DENO_FLAGS=--v8-flags=--expose-gc the report also gives the live heap (after a
 * full collection, so the figures that follow are lower than without).
 *
 * Bounded: N messages per round (default 100,000), R rounds (default 4), one connection.
 *
 *   deno run --allow-all bench/retained_churn.ts [--messages N] [--rounds R] [--payload B]
 *     [--broker mqttwk|mqttwk-durable]
 */
import { parseArgs } from "node:util";
import { type BrokerName, memoryKiB, startBroker } from "./brokers.ts";
import { encodeConnect, PINGREQ } from "./mqtt_wire.ts";
import { encode } from "../src/codec/encoder.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    messages: { type: "string", default: "100000" },
    rounds: { type: "string", default: "4" },
    payload: { type: "string", default: "64" },
    broker: { type: "string", default: "mqttwk" },
  },
});
const N = Number(values.messages);
const ROUNDS = Number(values.rounds);
const PAYLOAD = new Uint8Array(Number(values.payload)).fill(0x61);
const EMPTY = new Uint8Array(0);

// Inherited by the broker process.
Deno.env.set("MQTTWK_MEMORY_REPORT", "1");
const broker = await startBroker(values.broker as BrokerName);
const conn = await Deno.connect({ hostname: "127.0.0.1", port: broker.port });
conn.setNoDelay(true);

/** Bytes read but not yet consumed; PINGRESPs (0xd0 0x00) are counted. */
let pingResponses = 0;
let waiting = null as (() => void) | null;
(async () => {
  const buf = new Uint8Array(64 * 1024);
  while (true) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) break;
    // Only CONNACK (4 bytes) and PINGRESP (2 bytes) ever come back on this connection.
    for (let i = 0; i < n; i++) if (buf[i] === 0xd0) pingResponses++;
    waiting?.();
  }
})();

async function writeAll(b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += await conn.write(b.subarray(off));
}

/** Waits until the broker has handled everything sent so far (it answers in order). */
async function settle(): Promise<void> {
  const want = pingResponses + 1;
  await writeAll(PINGREQ);
  while (pingResponses < want) await new Promise<void>((r) => waiting = r);
}

/** Publishes a retained message (or, with an empty payload, a clear) to ret/0 .. ret/N-1. */
async function publishAll(payload: Uint8Array): Promise<void> {
  const batch: Uint8Array[] = [];
  let size = 0;
  for (let i = 0; i < N; i++) {
    const p = encode({
      type: "publish",
      topic: `churn/${i % 100}/${i}`,
      payload,
      qos: 0,
      retain: true,
      dup: false,
    }, 4);
    batch.push(p);
    size += p.length;
    if (size > 256 * 1024 || i === N - 1) {
      const out = new Uint8Array(size);
      let o = 0;
      for (const b of batch) {
        out.set(b, o);
        o += b.length;
      }
      await writeAll(out);
      batch.length = 0;
      size = 0;
    }
  }
  await settle();
}

const mib = (kib: number) => (kib / 1024).toFixed(0);
const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(0);

interface Usage {
  heapUsed: number;
  heapTotal: number;
  external: number;
}
interface Report {
  main: Usage;
  mainLive?: Usage;
  store?: { thread: Usage; live?: Usage; db: { walBytes: number } };
}

const PREFIX = "mqttwk-memory ";
const lastReport = () =>
  broker.logTail().split("\n").filter((l) => l.startsWith(PREFIX)).at(-1) ?? "";

/** The broker's own account of its memory: the `mqttwk-memory` line it prints on SIGUSR2. */
async function report(): Promise<Report | null> {
  // The line carries live heap figures, so a new report never reads the same as the last.
  const before = lastReport();
  Deno.kill(broker.pid, "SIGUSR2");
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 20));
    const line = lastReport();
    if (line === before) continue;
    try {
      return JSON.parse(line.slice(PREFIX.length));
    } catch { /* only part of the line has arrived */ }
  }
  return null;
}

/** RSS after the broker had a moment to collect: what it holds, not what it has yet to free. */
async function measure(): Promise<string> {
  // Time passing is the point: the broker's GC runs when it is idle.
  await new Promise((r) => setTimeout(r, 3000));
  const rss = memoryKiB(broker.pid).rss;
  const r = await report();
  const heap = (u: Usage, live?: Usage) =>
    `${mb(u.heapUsed)}/${mb(u.heapTotal)}${live ? ` (live ${mb(live.heapUsed)})` : ""} ` +
    `ext ${mb(u.external)}`;
  let s = `RSS ${mib(rss)}`;
  if (r) s += `, main ${heap(r.main, r.mainLive)}`;
  if (r?.store) {
    s += `, worker ${heap(r.store.thread, r.store.live)}, WAL ${mb(r.store.db.walBytes)}`;
  }
  return s;
}

try {
  await writeAll(encodeConnect("churn", { clean: true }));
  await settle();
  const start = await measure();
  console.log(`broker ${values.broker}, ${N} retained messages of ${PAYLOAD.length} B per round`);
  console.log("MiB; heaps as used/total and external bytes");
  console.log(`start: ${start}`);
  for (let r = 1; r <= ROUNDS; r++) {
    await publishAll(PAYLOAD);
    console.log(`round ${r} set:   ${await measure()}`);
    await publishAll(EMPTY);
    console.log(`round ${r} clear: ${await measure()}`);
  }
} finally {
  conn.close();
  await broker.stop();
}
