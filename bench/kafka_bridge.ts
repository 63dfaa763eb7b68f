/**
 * Kafka bridge benchmark, all on loopback with its own Kafka (scripts/kafka/launcher.ts, with the
 * JVM's optimizing compiler) and one MqttWk process per run. Per round, for each bridge setting
 * (off, at-least-once, and optionally another checkout's at-least-once as a baseline):
 *
 * - fan-in QoS 1: `--publishers` QoS 1 publishers (window `--window` each) -> 1 QoS 1 subscriber;
 *   messages/s the subscriber received.
 * - sustained: the same publishers, no subscriber: PUBACK/s, which under at-least-once is the
 *   records/s Kafka acknowledged (and Kafka's offsets are checked to hold at least as many).
 * - latency: one QoS 1 publisher paced at `--rate` msg/s; PUBLISH -> PUBACK p50/p99.
 *
 * Settings alternate order round by round; the report gives medians and, per round, the ratio
 * bridge on / off of the fan-in, so a machine shared with other work still gives a fair ratio.
 * During the sustained load it also takes CPU (100 = one core) of the broker's main thread, of
 * its other threads (the producer thread, V8's helpers), of Kafka's JVM, of this generator and of
 * everything else on the machine, and the broker's CPU time per record.
 *
 *   deno task bench:kafka
 *   deno task bench:kafka --rounds 3 --duration 5 --publishers 10 --window 100 --payload 64
 *   deno task bench:kafka --baseline /path/to/other/checkout   # before/after in the same run
 *   MQTTWK_BENCH_BASELINE=/path/to/other/checkout deno task bench:kafka            # the same
 *   MQTTWK_BENCH_BASELINE=$PWD MQTTWK_BENCH_BASELINE_DENO_FLAGS="--v8-flags=..." deno task bench:kafka  # a flag
 *   deno task bench:kafka --bootstrap 127.0.0.1:9092            # an already running Kafka
 *   MQTTWK_BENCH_DENO_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" deno task bench:kafka
 */
import { parseArgs } from "node:util";
import { Kafka, logLevel } from "kafkajs";
import { BenchConn, sleep } from "./client.ts";
import { START_V8_FLAGS } from "./brokers.ts";
import { nowMs, PublishBatcher } from "./mqtt_wire.ts";
import { startKafka } from "../scripts/kafka/launcher.ts";
import { silenceKafkajsTimerWarnings } from "../src/bridge/kafka/kafkajs_warnings.ts";

silenceKafkajsTimerWarnings();

const { values: opt } = parseArgs({
  args: Deno.args,
  options: {
    duration: { type: "string", default: "5" },
    publishers: { type: "string", default: "10" },
    window: { type: "string", default: "100" },
    payload: { type: "string", default: "64" },
    rate: { type: "string", default: "5000" },
    "latency-seconds": { type: "string", default: "3" },
    rounds: { type: "string", default: "3" },
    bootstrap: { type: "string" },
    baseline: { type: "string" },
    /** For profiling one load: "fanin" runs only the fan-in (after one latency warm-up). */
    only: { type: "string" },
    /** Writes each measured latency sample as "<ms since start> <latency ms>" lines to FILE-<n>. */
    "lat-dump": { type: "string" },
  },
});
const BASELINE = opt.baseline ?? Deno.env.get("MQTTWK_BENCH_BASELINE");
const DURATION_S = Number(opt.duration);
const PUBLISHERS = Number(opt.publishers);
const WINDOW = Number(opt.window);
const PAYLOAD = Number(opt.payload);
const RATE = Number(opt.rate);
const LAT_S = Number(opt["latency-seconds"]);
const ROUNDS = Number(opt.rounds);

interface Setting {
  name: string;
  bridge: boolean;
  /** Checkout whose main.ts runs. */
  dir: string | URL;
  /** Deno flags of this setting alone (the baseline's MQTTWK_BENCH_BASELINE_DENO_FLAGS). */
  flags?: string[];
}
const HERE = new URL("../", import.meta.url);
const SETTINGS: Setting[] = [
  { name: "off", bridge: false, dir: HERE },
  { name: "at-least-once", bridge: true, dir: HERE },
];
if (BASELINE) {
  // A runtime flag's before/after: the baseline may be this very checkout, run with other flags
  // (given last, so that its --v8-flags replace the others).
  const flags = Deno.env.get("MQTTWK_BENCH_BASELINE_DENO_FLAGS")?.split(" ").filter(Boolean);
  SETTINGS.push({ name: "at-least-once (baseline)", bridge: true, dir: BASELINE, flags });
}

interface Running {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** Clock ticks per second of /proc's CPU times (USER_HZ; 100 on Linux). */
const HZ = 100;

/** utime + stime of a process or thread, in ticks (0 when it is gone). */
function ticks(path: string): number {
  try {
    const stat = Deno.readTextFileSync(path);
    // Fields after the command name, which is in parentheses and may hold spaces.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

/** The broker's main thread and its other threads (producer thread, V8 helpers), in ticks. */
function brokerTicks(pid: number): { main: number; other: number } {
  const main = ticks(`/proc/${pid}/task/${pid}/stat`);
  let all = 0;
  try {
    for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
      all += ticks(`/proc/${pid}/task/${t.name}/stat`);
    }
  } catch { /* gone */ }
  return { main, other: all - main };
}

/** Busy ticks of the whole machine (user, nice, system, irq, softirq, steal). */
function machineTicks(): number {
  const f = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).map(Number);
  return f[1] + f[2] + f[3] + f[6] + f[7] + f[8];
}

interface CpuShare {
  /** CPU% (100 = one core) over the window. */
  main: number;
  other: number;
  jvm: number;
  gen: number;
  rest: number;
}

/** Starts measuring CPU; the returned function gives the shares since. */
function cpuWindow(brokerPid: number, jvmPid: number | null): () => CpuShare {
  const t0 = performance.now();
  const b0 = brokerTicks(brokerPid);
  const j0 = jvmPid ? ticks(`/proc/${jvmPid}/stat`) : 0;
  const g0 = ticks("/proc/self/stat");
  const m0 = machineTicks();
  return () => {
    const secs = (performance.now() - t0) / 1000;
    const b = brokerTicks(brokerPid);
    const pct = (d: number) => (d / HZ / secs) * 100;
    const main = pct(b.main - b0.main);
    const other = pct(b.other - b0.other);
    const jvm = jvmPid ? pct(ticks(`/proc/${jvmPid}/stat`) - j0) : 0;
    const gen = pct(ticks("/proc/self/stat") - g0);
    const rest = Math.max(0, pct(machineTicks() - m0) - main - other - jvm - gen);
    return { main, other, jvm, gen, rest };
  };
}

async function startMqttwk(bootstrap: string, s: Setting, topic: string): Promise<Running> {
  const args = [
    "run",
    "--allow-all",
    ...START_V8_FLAGS,
    // For profiling, e.g. MQTTWK_BENCH_DENO_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
    ...(Deno.env.get("MQTTWK_BENCH_DENO_FLAGS")?.split(" ").filter(Boolean) ?? []),
    ...(s.flags ?? []),
    "main.ts",
    "--port=0",
    "--host=127.0.0.1",
    "--persistence=memory",
    "--mqttwk.broker.websocket-enabled=false",
    "--mqttwk.broker.max-inflight=65535",
    "--log-level=info",
  ];
  if (s.bridge) {
    args.push(
      "--mqttwk.broker.kafka.broker-enabled=true",
      `--mqttwk.broker.kafka.bootstrap.servers=${bootstrap}`,
      `--mqttwk.broker.kafka.producer.topic=${topic}`,
      "--mqttwk.broker.kafka.delivery=at-least-once",
    );
  }
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: s.dir,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let port = 0;
  const ready = s.bridge ? /kafka producer connected/ : /listening tcp/;
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`mqttwk exited before it was ready:\n${text}`);
    text += value;
    const m = /listening tcp \S+:(\d+)/.exec(text);
    if (m) port = Number(m[1]);
    if (port && ready.test(text)) break;
  }
  // Keep draining stdout so the broker never blocks on a full pipe; MQTTWK_BENCH_BROKER_LOG=FILE
  // keeps it (with `--trace-gc` in MQTTWK_BENCH_DENO_FLAGS: the broker's collections).
  const logFile = Deno.env.get("MQTTWK_BENCH_BROKER_LOG");
  if (logFile) Deno.writeTextFileSync(logFile, text, { append: true });
  (async () => {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      if (logFile) Deno.writeTextFileSync(logFile, value, { append: true });
    }
  })().catch(() => {});
  return {
    port,
    pid: child.pid,
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

/**
 * Closed-loop QoS 1 publishing on `PUBLISHERS` connections, each keeping up to `WINDOW`
 * unacknowledged; with `subscribe`, one QoS 1 subscriber to all of it. Returns PUBACKs/s and
 * messages/s the subscriber got.
 */
async function load(port: number, subscribe: boolean): Promise<{ acked: number; got: number }> {
  const run = `${Date.now()}`;
  let got = 0;
  let sub: BenchConn | null = null;
  if (subscribe) {
    sub = await BenchConn.open(port, `bench-kafka-sub-${run}`);
    sub.onPublishMsg = () => got++;
    await sub.subscribe(`load/${run}/#`, 1);
  }
  const conns = await Promise.all(
    [...Array(PUBLISHERS).keys()].map((i) => BenchConn.open(port, `bench-kafka-${i}-${run}`)),
  );
  let acked = 0;
  const t0 = performance.now();
  const end = t0 + DURATION_S * 1000;
  // Deliveries within the window: taken by the timer or by the first publisher to see the
  // window end, whichever is first. (With the timer alone, publishers whose acks come at once
  // could finish and clear it before it fired: "fan-in 0 msg/s", then an Infinity ratio.)
  let gotInTime = 0;
  let snapped = false;
  const snapshot = () => {
    if (snapped) return;
    snapped = true;
    gotInTime = got;
  };
  const snap = setTimeout(snapshot, DURATION_S * 1000);
  await Promise.all(conns.map(async (c, i) => {
    const batcher = new PublishBatcher(`load/${run}/${i}`, 1, PAYLOAD, WINDOW);
    let inflight = 0;
    let wake: (() => void) | null = null;
    c.onPubackMsg = () => {
      inflight--;
      if (performance.now() < end) acked++;
      if (wake && inflight <= WINDOW / 2) {
        const w = wake;
        wake = null;
        w();
      }
    };
    while (performance.now() < end) {
      if (inflight <= WINDOW / 2) {
        const n = WINDOW - inflight;
        inflight += n;
        await c.write(batcher.fill(n, nowMs()));
      } else {
        await Promise.race([new Promise<void>((r) => wake = r), sleep(100)]);
      }
    }
    snapshot();
    const drainEnd = performance.now() + 30_000;
    while (inflight > 0 && performance.now() < drainEnd) await sleep(5);
  }));
  clearTimeout(snap);
  const secs = DURATION_S;
  await Promise.all(conns.map((c) => c.close()));
  await sub?.close();
  return { acked: acked / secs, got: gotInTime / secs };
}

/** One QoS 1 publisher at `RATE` msg/s (a burst every 2 ms): PUBLISH -> PUBACK times in ms. */
let dumps = 0;

async function pacedLatency(port: number): Promise<number[]> {
  const c = await BenchConn.open(port, `bench-kafka-lat-${Date.now()}`);
  const perTick = Math.max(1, Math.round(RATE / 500));
  const batcher = new PublishBatcher("lat/x", 1, PAYLOAD, perTick);
  const sentAt = new Map<number, number>();
  const out: number[] = [];
  const at: number[] = [];
  c.onPubackMsg = (pid) => {
    const t = sentAt.get(pid);
    if (t !== undefined) {
      out.push(performance.now() - t);
      at.push(t);
      sentAt.delete(pid);
    }
  };
  let pid = 1;
  const t0 = performance.now();
  const ticks = Math.round((LAT_S * 1000) / 2);
  for (let i = 0; i < ticks; i++) {
    const due = t0 + i * 2;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const now = performance.now();
    for (let k = 0; k < perTick; k++) {
      sentAt.set(pid, now);
      pid = pid === 65535 ? 1 : pid + 1;
    }
    await c.write(batcher.fill(perTick, nowMs()));
  }
  const drainEnd = performance.now() + 10_000;
  while (sentAt.size > 0 && performance.now() < drainEnd) await sleep(5);
  await c.close();
  // The first quarter second warms up the connection and the producer.
  const skip = Math.min(out.length - 1, Math.round(RATE / 4));
  if (opt["lat-dump"]) {
    const lines = out.slice(skip).map((l, i) =>
      `${(at[skip + i] - t0).toFixed(3)} ${l.toFixed(3)}`
    );
    await Deno.writeTextFile(`${opt["lat-dump"]}-${++dumps}`, lines.join("\n") + "\n");
  }
  return out.slice(skip);
}

async function kafkaCount(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offs = await admin.fetchTopicOffsets(topic);
    return offs.reduce((s, p) => s + Number(p.offset), 0);
  } catch {
    return 0;
  } finally {
    await admin.disconnect();
  }
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const median = (xs: number[]) => pct(xs, 50);

interface Result {
  fanIn: number;
  sustained: number;
  p50: number;
  p99: number;
  cpu: CpuShare;
}

const server = opt.bootstrap ? null : await startKafka({ fullJit: true });
const bootstrap = opt.bootstrap ?? server!.bootstrap;
const kafka = new Kafka({ clientId: "bench", brokers: [bootstrap], logLevel: logLevel.NOTHING });
console.log(
  `Kafka at ${bootstrap}; ${PUBLISHERS} QoS 1 publishers x window ${WINDOW}, ${PAYLOAD}-byte ` +
    `payloads, ${DURATION_S} s per load, latency at ${RATE} msg/s for ${LAT_S} s, ${ROUNDS} rounds`,
);

const results = new Map<string, Result[]>(SETTINGS.map((s) => [s.name, []]));
try {
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? SETTINGS : [...SETTINGS].reverse();
    for (const s of order) {
      const topic = `bench-${round}-${s.bridge ? "on" : "off"}-${Date.now()}`;
      const b = await startMqttwk(bootstrap, s, topic);
      try {
        await pacedLatency(b.port); // warm-up: JIT on both sides, topic creation, metadata
        const fanOnly = opt.only === "fanin";
        const lat = fanOnly ? [0] : await pacedLatency(b.port);
        const fan = await load(b.port, true);
        if (fanOnly) {
          const zero = { main: 0, other: 0, jvm: 0, gen: 0, rest: 0 };
          results.get(s.name)!.push({ fanIn: fan.got, sustained: 0, p50: 0, p99: 0, cpu: zero });
          console.log(
            `  round ${round + 1} ${s.name} (pid ${b.pid}): fan-in ${Math.round(fan.got)}`,
          );
          continue;
        }
        const n0 = s.bridge ? await kafkaCount(kafka, topic) : 0;
        const cpu = cpuWindow(b.pid, server?.pid() ?? null);
        const sus = await load(b.port, false);
        const share = cpu();
        if (s.bridge) {
          const n = await kafkaCount(kafka, topic);
          if (n - n0 < sus.acked * DURATION_S) {
            console.log(`  ${s.name}: Kafka holds fewer records than were acknowledged!`);
          }
        }
        const r = {
          fanIn: fan.got,
          sustained: sus.acked,
          p50: pct(lat, 50),
          p99: pct(lat, 99),
          cpu: share,
        };
        results.get(s.name)!.push(r);
        const c = r.cpu;
        console.log(
          `  round ${round + 1} ${s.name} (pid ${b.pid}): fan-in ${
            Math.round(r.fanIn)
          } msg/s, sustained ` +
            `${Math.round(r.sustained)}/s, p50 ${r.p50.toFixed(2)} ms, p99 ${
              r.p99.toFixed(2)
            } ms; ` +
            `sustained CPU% main ${c.main.toFixed(0)}, other threads ${c.other.toFixed(0)}, ` +
            `kafka ${c.jvm.toFixed(0)}, generator ${c.gen.toFixed(0)}, rest ${c.rest.toFixed(0)}`,
        );
        if (r.fanIn === 0) {
          console.log(`  round ${round + 1} ${s.name}: the subscriber got nothing; round left out`);
        }
      } finally {
        await b.stop();
      }
    }
  }
} finally {
  await server?.close();
}

const off = results.get("off")!;
const head = [
  "bridge",
  "fan-in msg/s",
  "on/off",
  "sustained/s",
  "p50 ms",
  "p99 ms",
  "added p99 ms",
  "CPU% main/other/kafka/gen/rest",
  "broker µs/rec",
];
/** Median of the values that exist; "n/a" when none does. */
const med = (xs: number[], digits: number, suffix = "") => {
  const ok = xs.filter((x) => Number.isFinite(x));
  return ok.length === 0 ? "n/a" : `${median(ok).toFixed(digits)}${suffix}`;
};
const rows = SETTINGS.map((s) => {
  const rs = results.get(s.name)!;
  // A round whose off run (or this run) got nothing has no ratio: left out, not Infinity.
  const ratios = rs.map((r, i) => r.fanIn > 0 && off[i].fanIn > 0 ? r.fanIn / off[i].fanIn : NaN);
  const added = rs.map((r, i) => r.p99 - off[i].p99);
  const got = rs.map((r) => r.fanIn).filter((x) => x > 0);
  const cpu = (k: keyof CpuShare) => med(rs.map((r) => r.cpu[k]), 0);
  // Broker CPU (all its threads) per acknowledged record of the sustained load.
  const perRec = rs.map((r) =>
    r.sustained > 0 ? ((r.cpu.main + r.cpu.other) / 100) * 1e6 / r.sustained : NaN
  );
  return [
    s.name,
    got.length > 0 ? String(Math.round(median(got))) : "n/a",
    s.bridge ? med(ratios, 2, "x") : "-",
    String(Math.round(median(rs.map((r) => r.sustained)))),
    median(rs.map((r) => r.p50)).toFixed(2),
    median(rs.map((r) => r.p99)).toFixed(2),
    s.bridge ? `+${median(added).toFixed(2)}` : "-",
    `${cpu("main")}/${cpu("other")}/${cpu("jvm")}/${cpu("gen")}/${cpu("rest")}`,
    med(perRec, 1),
  ];
});
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r: string[]) => r.map((c, i) => c.padStart(widths[i])).join("  ");
console.log(
  `medians of ${ROUNDS} alternating rounds (ratios and added p99 per round, then median)`,
);
console.log(line(head));
for (const r of rows) console.log(line(r));
