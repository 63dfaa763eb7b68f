/**
 * The scenarios that are not a closed publish loop (see scenarios.ts for those): TLS handshake
 * rates, a handshake storm beside a latency run, idle connection cost over TLS/WS/WSS, a
 * subscribe storm against retained messages, and persistent sessions drained after a reconnect.
 */

import { BenchConn, sleep, withTimeout } from "./client.ts";
import { cpuSeconds, memoryKiB, type RunningBroker, systemBusySeconds } from "./brokers.ts";
import { PublishBatcher, remLenSize, writeRemLen } from "./mqtt_wire.ts";
import type { Scenario } from "./scenario_list.ts";
import type { RunResult, ScenarioRun } from "./scenarios.ts";
import type { Batcher } from "./scenarios_v5.ts";

function empty(b: RunningBroker, s: Scenario, round: number): RunResult {
  return {
    scenario: s.name,
    broker: b.name,
    round,
    ok: false,
    msgsPerSec: 0,
    sentPerSec: 0,
    p50Ms: NaN,
    p99Ms: NaN,
    brokerCpuPct: NaN,
    brokerPeakRssMiB: NaN,
    genCpuPct: NaN,
    otherCpuPct: NaN,
    lost: 0,
  };
}

/** CPU of broker, generator and the rest of the machine from `start()` to `end(res)`. */
function cpuWindow(b: RunningBroker) {
  const bc0 = cpuSeconds(b.pid);
  const gc0 = cpuSeconds(Deno.pid);
  const sys0 = systemBusySeconds();
  const t0 = performance.now();
  return {
    t0,
    end(res: RunResult): number {
      const wall = (performance.now() - t0) / 1000;
      res.brokerCpuPct = ((cpuSeconds(b.pid) - bc0) / wall) * 100;
      res.genCpuPct = ((cpuSeconds(Deno.pid) - gc0) / wall) * 100;
      res.otherCpuPct = Math.max(
        0,
        ((systemBusySeconds() - sys0) / wall) * 100 - res.brokerCpuPct - res.genCpuPct,
      );
      res.brokerPeakRssMiB = memoryKiB(b.pid).hwm / 1024;
      return wall;
    },
  };
}

/** Runs `count` jobs with at most `concurrency` at a time. */
async function pool(count: number, concurrency: number, job: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await job(next++);
    }),
  );
}

/** PUBLISHes on `prefix/0..k-1`, one topic per batch in turn (many topics, batched writes). */
export class RotatingBatcher implements Batcher {
  readonly qos: number;
  readonly #batchers: PublishBatcher[];
  #next = 0;

  constructor(prefix: string, k: number, qos: number, payload: number, maxBatch: number) {
    this.qos = qos;
    this.#batchers = Array.from(
      { length: k },
      (_, i) => new PublishBatcher(`${prefix}/${i}`, qos, payload, maxBatch),
    );
  }

  fill(n: number, ts: number): Uint8Array {
    const b = this.#batchers[this.#next];
    this.#next = (this.#next + 1) % this.#batchers.length;
    return b.fill(n, ts);
  }
}

// ------------------------------------------------------------------------------ TLS handshakes

/**
 * TLS connects + CONNECT/CONNACK, `s.connections` of them 16 at a time, driven by
 * tls_handshakes.py (Python's ssl): Deno's node:tls client ignores the session it is offered and
 * never resumes, so with it the -resume scenarios measured full handshakes on every broker.
 */
export async function runHandshakes(
  b: RunningBroker,
  s: Scenario,
  round: number,
): Promise<ScenarioRun> {
  const res = empty(b, s, round);
  const e = b.endpoints.tls!;
  const n = s.connections ?? 2000;
  const caFile = Deno.makeTempFileSync({ suffix: ".pem" });
  Deno.writeTextFileSync(caFile, e.ca!);
  const child = new Deno.Command("python3", {
    args: [
      new URL("./tls_handshakes.py", import.meta.url).pathname,
      e.hostname,
      String(e.port),
      caFile,
      s.tlsVersion!,
      String(n),
      "16",
      s.resume ? "1" : "0",
      `r${round}-`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const line = async (): Promise<string> => {
    while (!text.includes("\n")) {
      const r = await lines.read();
      if (r.done) throw new Error("tls_handshakes.py ended early");
      text += r.value;
    }
    const k = text.indexOf("\n");
    const l = text.slice(0, k);
    text = text.slice(k + 1);
    return l;
  };
  try {
    if ((await line()) !== "ready") throw new Error("tls_handshakes.py did not get ready");
    const cpu = cpuWindow(b);
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode("go\n"));
    await w.close();
    const out = JSON.parse(await line()) as {
      handshakes: number;
      failed: number;
      reused: number;
      seconds: number;
      firstError: string;
    };
    const wall = cpu.end(res);
    res.connections = out.handshakes;
    res.failedConnections = out.failed;
    res.connectSeconds = out.seconds || wall;
    res.connectRate = out.handshakes / res.connectSeconds;
    res.msgsPerSec = res.connectRate;
    res.detail = { resumed: out.reused };
    res.ok = out.failed === 0 && (!s.resume || out.reused > 0);
    if (out.failed > 0) {
      res.error = `${out.failed}/${n} handshakes failed (first: ${out.firstError})`;
    } else if (!res.ok) res.error = "no session was resumed";
  } finally {
    lines.releaseLock();
    await child.status;
    Deno.removeSync(caFile);
  }
  return { result: res, cleanup: () => Promise.resolve() };
}

/** A running handshake storm (startStorm). */
export interface Storm {
  /** Resolves once every client was tried: how many got in, and how long it took. */
  done: Promise<{ connected: number; seconds: number }>;
  /** Closes the storm's clients; resolves with how many had got in. */
  stop(): Promise<number>;
}

/**
 * `n` TLS clients connecting (full handshakes, CONNECT/CONNACK, then idle) from a separate
 * process (bench/tls_storm.py, OpenSSL), so that the storm's handshakes neither slow the latency
 * measurement's own event loop nor are limited by a client slower than the broker.
 */
export function startStorm(b: RunningBroker, n: number, round: number): Storm {
  const e = b.endpoints.tls!;
  const caFile = Deno.makeTempFileSync({ suffix: ".pem" });
  Deno.writeTextFileSync(caFile, e.ca ?? "");
  // At the lowest priority: the storm stands for devices elsewhere, whose handshake CPU (as much
  // as the broker's) is not the broker machine's; on 2 shared cores it would starve the broker
  // and the latency generator and measure that instead.
  const child = new Deno.Command("nice", {
    args: [
      "-n",
      "19",
      "python3",
      new URL("./tls_storm.py", import.meta.url).pathname,
      e.hostname,
      String(e.port),
      caFile,
      String(n),
      "64",
      `storm${round}`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let report: ((r: { connected: number; seconds: number }) => void) | null = null;
  const done = new Promise<{ connected: number; seconds: number }>((r) => report = r);
  // The report is the storm's only output line; it comes before the process waits on stdin.
  (async () => {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      text += r.value;
      const m = text.match(/connected (\d+) failed \d+ seconds ([\d.]+)/);
      if (m) {
        report!({ connected: Number(m[1]), seconds: Number(m[2]) });
        break;
      }
    }
    reader.releaseLock();
  })().catch(() => {});
  let connected = -1;
  done.then((d) => connected = d.connected);
  return {
    done,
    async stop(): Promise<number> {
      // Still connecting: the storm did not finish in its time; its count is not known.
      if (connected < 0) child.kill("SIGKILL");
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode("stop\n")).catch(() => {});
      await w.close().catch(() => {});
      await child.status;
      Deno.removeSync(caFile);
      return Math.max(0, connected);
    },
  };
}

// ---------------------------------------------------------------- idle connections, any transport

export async function runWireConnections(
  b: RunningBroker,
  s: Scenario,
  round: number,
): Promise<ScenarioRun> {
  const res = empty(b, s, round);
  const e = b.endpoints[s.transport!]!;
  const n = s.connections!;
  const conns: BenchConn[] = [];
  const cleanup = async () => {
    await Promise.all(conns.map((c) => c.close()));
  };
  const mem0 = memoryKiB(b.pid);
  const cpu = cpuWindow(b);
  let failed = 0;
  let firstError = "";
  await pool(n, 32, async (i) => {
    try {
      conns.push(
        await BenchConn.open(e.port, `c${round}-${i}`, { endpoint: e, readBuffer: 1024 }),
      );
    } catch (err) {
      failed++;
      firstError ||= String(err);
    }
  });
  const wall = cpu.end(res);
  await sleep(1000); // let the broker settle before reading its memory
  const mem1 = memoryKiB(b.pid);
  res.connections = conns.length;
  res.failedConnections = failed;
  res.connectSeconds = wall;
  res.connectRate = conns.length / wall;
  res.rssPerConnKiB = (mem1.rss - mem0.rss) / Math.max(1, conns.length);
  res.brokerPeakRssMiB = mem1.hwm / 1024;
  res.ok = conns.length === n;
  if (!res.ok) res.error = `${conns.length}/${n} connected (first error: ${firstError})`;
  return { result: res, cleanup };
}

// ------------------------------------------------------------------ retained subscribe storm

const te = new TextEncoder();

/** One PUBLISH (3.1.1) with the retain flag. */
function retainedPublish(topic: string, qos: number, pid: number, payload: Uint8Array) {
  const t = te.encode(topic);
  const rem = 2 + t.length + (qos > 0 ? 2 : 0) + payload.length;
  const buf = new Uint8Array(1 + remLenSize(rem) + rem);
  buf[0] = 0x31 | (qos << 1);
  let o = writeRemLen(buf, 1, rem);
  buf[o++] = t.length >> 8;
  buf[o++] = t.length & 255;
  buf.set(t, o);
  o += t.length;
  if (qos > 0) {
    buf[o++] = pid >> 8;
    buf[o++] = pid & 255;
  }
  buf.set(payload, o);
  return buf;
}

/** Publishes `count` QoS 1 messages from `topicOf(i)` and waits for every PUBACK. */
async function publishAll(
  c: BenchConn,
  count: number,
  topicOf: (i: number) => string,
  retain: boolean,
  payload: Uint8Array,
  timeoutMs: number,
): Promise<void> {
  let acked = 0;
  let waiter: (() => void) | null = null;
  c.onPubackMsg = () => {
    acked++;
    waiter?.();
  };
  c.onChunkEnd = () => waiter?.();
  const deadline = performance.now() + timeoutMs;
  let sent = 0;
  let pid = 1;
  while (acked < count) {
    if (c.closed) throw new Error("publisher closed by the broker");
    if (performance.now() > deadline) throw new Error(`only ${acked}/${count} PUBACKs in time`);
    const room = Math.min(count - sent, 500 - (sent - acked), 64);
    if (room > 0) {
      const parts: Uint8Array[] = [];
      for (let k = 0; k < room; k++, sent++) {
        const p = retainedPublish(topicOf(sent), 1, pid, payload);
        if (!retain) p[0] &= ~1;
        parts.push(p);
        pid = pid === 65535 ? 1 : pid + 1;
      }
      const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
      let o = 0;
      for (const p of parts) {
        all.set(p, o);
        o += p.length;
      }
      await c.write(all);
      continue;
    }
    await new Promise<void>((r) => {
      waiter = r;
      setTimeout(r, 100);
    });
    waiter = null;
  }
}

export async function runRetainedStorm(
  b: RunningBroker,
  s: Scenario,
  round: number,
): Promise<ScenarioRun> {
  const res = empty(b, s, round);
  const conns: BenchConn[] = [];
  const cleanup = async () => {
    await Promise.all(conns.map((c) => c.close()));
  };
  const total = s.messages ?? 100_000;
  const subs = s.subscribers;
  const per = Math.ceil(total / subs);
  try {
    const pub = await BenchConn.open(b.port, `rp${round}`, {});
    conns.push(pub);
    const payload = new Uint8Array(16).fill(0x61);
    const setup0 = performance.now();
    await publishAll(
      pub,
      total,
      (i) => `bench/r/${i % subs}/${Math.floor(i / subs)}`,
      true,
      payload,
      120_000,
    );
    res.sentPerSec = total / ((performance.now() - setup0) / 1000);
    let received = 0;
    let done: () => void = () => {};
    const all = new Promise<void>((r) => done = r);
    const cpu = cpuWindow(b);
    await Promise.all(Array.from({ length: subs }, async (_, i) => {
      const c = await BenchConn.open(b.port, `rs${round}-${i}`, { readBuffer: 64 * 1024 });
      conns.push(c);
      c.onPublishMsg = () => {
        if (++received >= per * subs) done();
      };
      await c.subscribe(`bench/r/${i}/+`, s.qos, 60_000);
    }));
    await withTimeout(all, 120_000, `${per * subs} retained messages (got ${received})`);
    const wall = cpu.end(res);
    res.connectSeconds = wall;
    res.msgsPerSec = received / wall;
    res.ok = true;
  } catch (e) {
    res.error = e instanceof Error ? e.message : String(e);
  }
  return { result: res, cleanup };
}

// ------------------------------------------------------------- persistent sessions: queue, drain

export async function runDrain(
  b: RunningBroker,
  s: Scenario,
  round: number,
): Promise<ScenarioRun> {
  const res = empty(b, s, round);
  const conns: BenchConn[] = [];
  const cleanup = async () => {
    await Promise.all(conns.map((c) => c.close()));
  };
  const total = s.messages ?? 50_000;
  const subs = s.subscribers;
  try {
    // Persistent sessions with a QoS 1 subscription each, then offline.
    for (let i = 0; i < subs; i++) {
      const c = await BenchConn.open(b.port, `d${round}-${i}`, { clean: false });
      await c.subscribe(`bench/d/${i}`, 1);
      await c.close();
    }
    await sleep(300); // the broker notices the closes
    const pub = await BenchConn.open(b.port, `dp${round}`, {});
    conns.push(pub);
    const payload = new Uint8Array(16).fill(0x62);
    const cpuQ = cpuWindow(b);
    await publishAll(pub, total, (i) => `bench/d/${i % subs}`, false, payload, 120_000);
    const qRes = empty(b, s, round);
    res.sentPerSec = total / cpuQ.end(qRes);
    // Reconnect every session and take what was queued.
    let received = 0;
    let done: () => void = () => {};
    const all = new Promise<void>((r) => done = r);
    const cpu = cpuWindow(b);
    await Promise.all(Array.from({ length: subs }, async (_, i) => {
      const c = await BenchConn.open(b.port, `d${round}-${i}`, {
        clean: false,
        readBuffer: 64 * 1024,
        // Queued messages may come in the same read as CONNACK.
        onPublish: () => {
          if (++received >= total) done();
        },
      });
      conns.push(c);
    }));
    await withTimeout(all, 120_000, `${total} queued messages (got ${received})`);
    const wall = cpu.end(res);
    res.connectSeconds = wall;
    res.msgsPerSec = received / wall;
    res.detail = { queueCpuPct: qRes.brokerCpuPct };
    res.ok = received >= total;
  } catch (e) {
    res.error = e instanceof Error ? e.message : String(e);
  }
  return { result: res, cleanup };
}
