/**
 * Runs the benchmark scenarios (defined in scenario_list.ts): the closed-loop throughput ones
 * (fan-in, fan-out, point-to-point, MQTT 3.1.1 or 5.0), the fixed offered-load latency ones,
 * and idle connection capacity.
 */

import net from "node:net";
import { BenchConn, sleep } from "./client.ts";
import {
  type BrokerName,
  cpuSeconds,
  memoryKiB,
  type RunningBroker,
  systemBusySeconds,
} from "./brokers.ts";
import { encodeConnect, nowMs, readTimestamp } from "./mqtt_wire.ts";
import type { Scenario } from "./scenario_list.ts";
import { type Batcher, firstFailure, makeBatcher, openOptions } from "./scenarios_v5.ts";
import { LatencyHistogram } from "./stats.ts";
import { connectGenerator, type ConnectOutcome, startConnectGen } from "./connect_c.ts";
import {
  RotatingBatcher,
  runDrain,
  runHandshakes,
  runRetainedStorm,
  runWireConnections,
  startStorm,
  type Storm,
} from "./scenarios_more.ts";

export {
  brokerRuns,
  buildScenarios,
  type Scenario,
  type ScenarioKind,
  type ScenarioOptions,
} from "./scenario_list.ts";

/** Unacknowledged QoS 1 PUBLISHes allowed per publisher. */
export const MAX_UNACKED = 64;
/** Most PUBLISHes coalesced into one socket write. */
export const MAX_BATCH = 64;
/**
 * Closed-loop window for the throughput scenarios: deliveries sent but not yet received, over
 * all publishers. It keeps the broker saturated without letting its queues grow without bound
 * (which would measure queueing, or drops, rather than throughput).
 */
export const DEFAULT_WINDOW = 1024;

const DEBUG = Deno.env.get("BENCH_DEBUG") === "1";

export interface RunResult {
  scenario: string;
  broker: BrokerName;
  round: number;
  ok: boolean;
  error?: string;
  /** Deliveries received per second by all subscribers together. */
  msgsPerSec: number;
  sentPerSec: number;
  p50Ms: number;
  p99Ms: number;
  brokerCpuPct: number;
  brokerPeakRssMiB: number;
  genCpuPct: number;
  /**
   * CPU used by everything else on the machine during the window (100 = one core): other
   * processes compete for the same 2 cores, so a high value flags a disturbed run.
   */
  otherCpuPct: number;
  /** Deliveries given up on (no progress for 1 s), over the whole run. */
  lost: number;
  /**
   * MQTT 5.0: percentage of deliveries that arrived with a topic alias alone, i.e. how much the
   * broker aliased towards subscribers that allowed it (whole run).
   */
  aliasedPct?: number;
  connections?: number;
  failedConnections?: number;
  connectSeconds?: number;
  connectRate?: number;
  rssPerConnKiB?: number;
  /** Kind "conn": which connect generator ran (the C one unless no compiler was found). */
  generator?: "C" | "node:net";
  /** Scenario-specific details kept in the JSON output (conn-cluster: per node). */
  detail?: Record<string, unknown>;
}

export interface Timing {
  warmupMs: number;
  durationMs: number;
  /** Closed-loop window in deliveries (see DEFAULT_WINDOW). */
  window: number;
}

export interface ScenarioRun {
  result: RunResult;
  /** Called after the broker was stopped (the generator then closes its sockets). */
  cleanup: () => Promise<void>;
}

export function runScenario(
  b: RunningBroker,
  s: Scenario,
  t: Timing,
  round: number,
): Promise<ScenarioRun> {
  if (s.kind === "conn-cluster") {
    return Promise.reject(new Error("conn-cluster is run by bench/cluster_conn.ts"));
  }
  if (s.kind === "handshake") return runHandshakes(b, s, round);
  if (s.kind === "retained-storm") return runRetainedStorm(b, s, round);
  if (s.kind === "drain") return runDrain(b, s, round);
  if (s.kind === "conn" && s.transport) return runWireConnections(b, s, round);
  return s.kind === "conn" ? runConnections(b, s, round) : runTraffic(b, s, t, round);
}

/** A result with nothing measured yet (ok: false until a run fills it in). */
/** Minimum warm-up of the fixed-load latency scenarios (full runs; --smoke keeps its own). */
export const LATENCY_WARMUP_MS = 5000;
/** The longest a handshake storm may take before its scenario fails. */
const STORM_LIMIT_MS = 180_000;

export function emptyResult(broker: BrokerName, scenario: string, round: number): RunResult {
  return {
    scenario,
    broker,
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

interface Pub {
  conn: BenchConn;
  batcher: Batcher;
  unacked: number;
  busy: boolean;
  pending: number;
}

async function runTraffic(
  b: RunningBroker,
  s: Scenario,
  t: Timing,
  round: number,
): Promise<ScenarioRun> {
  const res = emptyResult(b.name, s.name, round);
  const conns: BenchConn[] = [];
  const cleanup = async () => {
    await Promise.all(conns.map((c) => c.close()));
  };
  const clean = s.qos === 0; // QoS 1 runs use persistent sessions (what durability is for)
  const endpoint = b.endpoints[s.transport ?? "tcp"];
  // Cross-node scenarios: subscribers on another node of the same cluster.
  const subEndpoint = b.subPort && endpoint ? { ...endpoint, port: b.subPort } : endpoint;
  const window = s.window ?? t.window;
  const maxBatch = s.batch ?? MAX_BATCH;
  // Large payloads need room for a whole packet per read; wide fan-outs many small readers.
  const readBuffer = s.payload > 16_000 ? 256 * 1024 : s.subscribers > 100 ? 16 * 1024 : undefined;
  let storm: Storm | null = null;
  let stormSeconds = 0;
  const hist = new LatencyHistogram();
  // MQTTWK_BENCH_LAT_DUMP=PREFIX: every sample of the window, to PREFIX-<broker>-<scenario>-<round> (where
  // in time a tail comes from: a few stalls or a spread).
  const dumpTo = Deno.env.get("MQTTWK_BENCH_LAT_DUMP");
  const dump: number[] | null = dumpTo ? [] : null;
  let delivered = 0;
  let sent = 0;
  let lost = 0;
  let stop = false;
  let waiters: (() => void)[] = [];
  const wake = () => {
    if (waiters.length === 0) return;
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const waitProgress = () => new Promise<void>((r) => waiters.push(r));

  try {
    // Subscribers first, each acknowledged by SUBACK before any publish.
    const root = s.topicRoot ?? "bench";
    const topicOf = (i: number) =>
      s.kind === "topics"
        ? `bench/t/${i}`
        : s.kind === "fanin"
        ? `${root}/fanin/${i}`
        : s.kind === "fanout"
        ? `${root}/fanout`
        : `${root}/p2p/${i}`;
    const subTopic = (i: number) =>
      s.kind === "topics"
        ? `bench/t/${i}/+`
        : s.kind === "fanin"
        ? `${root}/fanin/+`
        : s.kind === "fanout"
        ? `${root}/fanout`
        : `${root}/p2p/${i}`;
    const subs = await Promise.all(
      Array.from({ length: s.subscribers }, async (_, i) => {
        const c = await BenchConn.open(b.subPort ?? b.port, `s${round}-${i}`, {
          ...openOptions(s, clean, "sub", subEndpoint),
          readBuffer,
        });
        conns.push(c);
        c.onPublishMsg = (buf, off) => {
          delivered++;
          const sentAt = readTimestamp(buf, off);
          hist.record(c.chunkTime - sentAt);
          if (dump && hist.enabled) dump.push(sentAt, c.chunkTime - sentAt);
        };
        c.onChunkEnd = wake;
        await c.subscribe(subTopic(i), s.qos);
        return c;
      }),
    );
    const pubs: Pub[] = await Promise.all(
      Array.from({ length: s.publishers }, async (_, i) => {
        const c = await BenchConn.open(b.port, `p${round}-${i}`, {
          ...openOptions(s, clean, "pub", endpoint),
          readBuffer,
        });
        conns.push(c);
        const p: Pub = {
          conn: c,
          batcher: s.kind === "topics"
            ? new RotatingBatcher(topicOf(i), 100, s.qos, s.payload, maxBatch)
            : makeBatcher(s, topicOf(i), c, maxBatch),
          unacked: 0,
          busy: false,
          pending: 0,
        };
        c.onPubackMsg = () => {
          p.unacked--;
        };
        c.onChunkEnd = wake;
        return p;
      }),
    );
    const fanout = s.kind === "fanout" ? s.subscribers : 1;

    // Loss watchdog: deliveries missing for a whole second are given up on (QoS 0 drops).
    let lastDelivered = -1;
    let lastProgress = performance.now();
    let ticks = 0;
    const outstanding = () => sent * fanout - delivered - lost;
    const watchdog = setInterval(() => {
      const now = performance.now();
      if (delivered !== lastDelivered) {
        lastDelivered = delivered;
        lastProgress = now;
      } else if (outstanding() > 0 && now - lastProgress > 1000) {
        lost += outstanding();
        lastProgress = now;
      }
      wake();
      if (DEBUG && ++ticks % 4 === 0) {
        console.error(
          `debug ${s.name} ${b.name}: sent ${sent} delivered ${delivered} lost ${lost} ` +
            `outstanding ${outstanding()} waiting ${waiters.length} ` +
            `unacked ${pubs.reduce((a, p) => a + p.unacked, 0)}`,
        );
      }
    }, 50);

    const fixedRateLoop = (pubs: Pub[], s: Scenario): Promise<void> =>
      (async () => {
        const rate = s.rate!;
        const start = performance.now();
        let scheduled = 0;
        let rr = 0;
        while (!stop) {
          const due = Math.floor(((performance.now() - start) / 1000) * rate) - scheduled;
          for (let k = 0; k < due; k++) pubs[rr++ % pubs.length].pending++;
          scheduled += Math.max(0, due);
          for (const p of pubs) {
            let n = Math.min(p.pending, maxBatch);
            if (s.qos > 0) n = Math.min(n, MAX_UNACKED - p.unacked);
            if (n <= 0 || p.busy) continue;
            if (p.conn.closed) throw closedError("publisher", conns);
            p.busy = true;
            p.pending -= n;
            sent += n;
            if (s.qos > 0) p.unacked += n;
            p.conn.write(p.batcher.fill(n, nowMs())).then(() => {
              p.busy = false;
            }, () => {});
          }
          await sleep(1);
        }
      })();

    let loops: Promise<void>[];
    if (s.kind === "latency") {
      loops = [fixedRateLoop(pubs, s)];
    } else {
      loops = pubs.map(async (p) => {
        while (!stop) {
          if (p.conn.closed) throw closedError("publisher", conns);
          let n = Math.min(maxBatch, Math.floor((window - outstanding()) / fanout));
          if (s.qos > 0) n = Math.min(n, MAX_UNACKED - p.unacked);
          if (n <= 0) {
            await waitProgress();
            continue;
          }
          const data = p.batcher.fill(n, nowMs());
          sent += n;
          if (s.qos > 0) p.unacked += n;
          await p.conn.write(data);
        }
      });
    }
    const loopsDone = Promise.all(loops);
    loopsDone.catch(() => {}); // surfaced below

    const failed = loopsDone.then(() => null, (e) => e as Error);
    const race = (ms: number) => Promise.race([sleep(ms), failed]);

    // Tail latency of a long-running server is what matters; a JIT runtime's first seconds
    // (functions still being optimized) would dominate p99, so the fixed-load runs warm up longer.
    let err = await race(
      s.kind === "latency" ? Math.max(t.warmupMs, LATENCY_WARMUP_MS) : t.warmupMs,
    );
    if (s.storm && !err) storm = startStorm(b, s.storm, round);
    const d0 = delivered;
    const s0 = sent;
    const pids = [b.pid, ...Object.values(b.otherPids ?? {})];
    const bc0 = pids.map(cpuSeconds);
    const gc0 = cpuSeconds(Deno.pid);
    const sys0 = systemBusySeconds();
    const w0 = performance.now();
    hist.reset();
    if (dump) dump.length = 0;
    if (!err && storm) {
      // The window is the storm: latency while 5,000 clients connect, however long they take.
      const ended = storm.done.then((d) => {
        stormSeconds = d.seconds;
        return null;
      });
      err = await Promise.race([
        Promise.all([ended, race(t.durationMs)]).then(([, e]) => e),
        failed,
        sleep(STORM_LIMIT_MS).then(() => new Error(`storm: not over after ${STORM_LIMIT_MS} ms`)),
      ]);
    } else if (!err) err = await race(t.durationMs);
    const wall = (performance.now() - w0) / 1000;
    hist.enabled = false;
    if (dump && dumpTo) {
      const lines = [];
      for (let i = 0; i < dump.length; i += 2) lines.push(`${dump[i]} ${dump[i + 1].toFixed(3)}`);
      await Deno.writeTextFile(`${dumpTo}-${b.name}-${s.name}-${round}`, lines.join("\n") + "\n");
    }
    const d1 = delivered;
    const s1 = sent;
    const bc1 = pids.map(cpuSeconds);
    const gc1 = cpuSeconds(Deno.pid);
    const sys1 = systemBusySeconds();
    const mem = memoryKiB(b.pid);
    if (storm) {
      const connected = await storm.stop();
      res.detail = {
        stormConnected: connected,
        stormSeconds,
        stormHandshakesPerSec: Math.round(connected / Math.max(stormSeconds, 0.001)),
      };
      if (connected < s.storm!) {
        throw new Error(`storm: ${connected}/${s.storm} TLS clients got in`);
      }
    }
    stop = true;
    wake();
    clearInterval(watchdog);
    await Promise.race([loopsDone.catch(() => {}), sleep(2000)]);
    if (err) throw err;
    if (subs.some((c) => c.closed)) throw closedError("subscriber", conns);
    const failure = firstFailure(conns);
    if (failure !== null) throw new Error(`MQTT 5.0: ${failure}`);

    res.msgsPerSec = (d1 - d0) / wall;
    res.sentPerSec = (s1 - s0) / wall;
    res.p50Ms = hist.percentile(50);
    res.p99Ms = hist.percentile(99);
    const cpuPct = pids.map((_, k) => ((bc1[k] - bc0[k]) / wall) * 100);
    res.brokerCpuPct = cpuPct.reduce((a, x) => a + x, 0);
    if (b.otherPids) {
      // Per process: the broker's own, then each other one by its label.
      const byLabel: Record<string, number> = { [b.name]: cpuPct[0] };
      Object.keys(b.otherPids).forEach((label, k) => byLabel[label] = cpuPct[k + 1]);
      res.detail = { ...res.detail, cpuPct: byLabel };
    }
    res.genCpuPct = ((gc1 - gc0) / wall) * 100;
    res.otherCpuPct = Math.max(0, ((sys1 - sys0) / wall) * 100 - res.brokerCpuPct - res.genCpuPct);
    res.brokerPeakRssMiB = mem.hwm / 1024;
    res.lost = lost;
    if (s.protocol === 5 && delivered > 0) {
      res.aliasedPct = (subs.reduce((a, c) => a + c.aliasedPublishes, 0) / delivered) * 100;
    }
    res.ok = res.msgsPerSec > 0;
    if (!res.ok) res.error = "no message received in the measurement window";
  } catch (e) {
    stop = true;
    await storm?.stop().catch(() => 0);
    wake();
    res.ok = false;
    res.error = e instanceof Error ? e.message : String(e);
  }
  return { result: res, cleanup };
}

function closedError(who: string, conns: BenchConn[]): Error {
  const why = firstFailure(conns);
  return new Error(`${who} connection closed by the broker${why ? ` (${why})` : ""}`);
}

/** Source address for connection i: spread over 127.1.x.y to stay clear of port exhaustion. */
function localAddressFor(i: number, round: number): string {
  return `127.1.${(round * 7) % 250}.${1 + Math.floor(i / 1000)}`;
}

async function runConnections(b: RunningBroker, s: Scenario, round: number): Promise<ScenarioRun> {
  const res = emptyResult(b.name, s.name, round);
  const n = s.connections!;
  const gen = await connectGenerator();
  if (!gen) {
    const openFds = [...Deno.readDirSync("/proc/self/fd")].length;
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const limit = Number(limits.match(/^Max open files\s+(\d+)/m)?.[1] ?? 1_000_000);
    if (openFds + n > limit - 50) {
      res.error = `${n} connections would exceed the generator's ${limit} open files ` +
        `(${openFds} already open)`;
      return { result: res, cleanup: () => Promise.resolve() };
    }
  }
  const mem0 = memoryKiB(b.pid);
  const bc0 = cpuSeconds(b.pid);
  const sys0 = systemBusySeconds();
  let outcome: ConnectOutcome;
  let genCpu: number;
  let cleanup: () => Promise<void>;
  if (gen) {
    const srcBase = localAddressFor(0, round).replace(/\.\d+$/, "");
    const c = startConnectGen(gen, b.port, n, CONNECT_CONCURRENCY, `c${round}-`, srcBase);
    outcome = await c.outcome;
    genCpu = cpuSeconds(c.pid);
    cleanup = async () => {
      await c.close();
      await sleep(50);
    };
    res.generator = "C";
  } else {
    const gc0 = cpuSeconds(Deno.pid);
    const sockets: net.Socket[] = [];
    outcome = await connectWithNodeNet(b.port, n, round, sockets);
    genCpu = cpuSeconds(Deno.pid) - gc0;
    cleanup = async () => {
      for (const sock of sockets) sock.destroy();
      await sleep(50);
    };
    res.generator = "node:net";
  }
  const bc1 = cpuSeconds(b.pid);
  const sys1 = systemBusySeconds();
  await sleep(1000); // let the broker settle before reading its memory
  const mem1 = memoryKiB(b.pid);
  const { connected, failed, firstError } = outcome;
  const wall = outcome.seconds;
  res.connections = connected;
  res.failedConnections = failed;
  res.connectSeconds = wall;
  res.connectRate = connected / wall;
  res.rssPerConnKiB = (mem1.rss - mem0.rss) / Math.max(1, connected);
  res.brokerCpuPct = ((bc1 - bc0) / wall) * 100;
  res.genCpuPct = (genCpu / wall) * 100;
  res.otherCpuPct = Math.max(0, ((sys1 - sys0) / wall) * 100 - res.brokerCpuPct - res.genCpuPct);
  res.brokerPeakRssMiB = mem1.hwm / 1024;
  res.ok = connected === n;
  if (!res.ok) {
    res.error = `${connected}/${n} connected, ${failed} failed (first: ${firstError || "timeout"})`;
  }
  return { result: res, cleanup };
}

/**
 * Connects in flight at once, for either generator: below Mosquitto's fixed listen backlog of
 * 100, so SYNs are never dropped and retried.
 */
const CONNECT_CONCURRENCY = 64;

/** The node:net generator (no C compiler): `n` connects, the sockets left open in `sockets`. */
async function connectWithNodeNet(
  port: number,
  n: number,
  round: number,
  sockets: net.Socket[],
): Promise<ConnectOutcome> {
  const PHASE_TIMEOUT_MS = 120_000;
  const t0 = performance.now();
  let connected = 0;
  let failed = 0;
  let firstError = "";
  let next = 0;

  const connectOne = (i: number) =>
    new Promise<void>((resolve) => {
      let done = false;
      let got = 0;
      const head = new Uint8Array(4);
      const finish = (ok: boolean, why?: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (ok) connected++;
        else {
          failed++;
          if (!firstError) firstError = why ?? "failed";
        }
        resolve();
      };
      const timer = setTimeout(() => finish(false, "CONNACK timeout"), 30_000);
      const sock = net.connect({
        host: "127.0.0.1",
        port,
        localAddress: localAddressFor(i, round),
      });
      sockets.push(sock);
      sock.on("connect", () => sock.write(encodeConnect(`c${round}-${i}`, { keepAlive: 0 })));
      sock.on("data", (d: Uint8Array) => {
        if (done) return;
        for (let k = 0; k < d.length && got < 4; k++) head[got++] = d[k];
        if (got < 4) return;
        if (head[0] === 0x20 && head[3] === 0) finish(true);
        else finish(false, `CONNACK return code ${head[3]}`);
      });
      sock.on("error", (e: Error) => finish(false, e.message));
      sock.on("close", () => finish(false, "closed before CONNACK"));
    });

  const deadline = t0 + PHASE_TIMEOUT_MS;
  await Promise.all(
    Array.from({ length: Math.min(CONNECT_CONCURRENCY, n) }, async () => {
      while (next < n && performance.now() < deadline && failed <= n / 100) {
        await connectOne(next++);
      }
    }),
  );
  return { connected, failed, firstError, seconds: (performance.now() - t0) / 1000 };
}
