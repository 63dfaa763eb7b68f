/**
 * A fuzz campaign: a broker subprocess with TCP and WebSocket listeners, the fuzz driver in a
 * second process, and a well-behaved mqtt.js client in this one doing QoS 1 round trips the
 * whole time. The driver runs in its own process so that its work (thousands of connections a
 * second) does not sit in the event loop that times the good client's round trips.
 *
 * The CI test (fuzz.test.ts) runs a campaign of 125,000 sequences; `deno task fuzz` runs
 * 1,000,000 (see --help).
 */
import { parseArgs } from "node:util";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { waitFor } from "../helpers/wait.ts";
import { freePort, mib, RssSampler, startBrokerProcess } from "./broker_process.ts";
import { describeGrowth, heapCensus } from "./heap_probe.ts";
import { formatFigures } from "../helpers/figures.ts";
import type { DriverResult } from "./fuzz_driver.ts";

/** How big a campaign is. */
export interface CampaignOptions {
  seed: number;
  tcpCount: number;
  wsCount: number;
  concurrency: number;
  /** Most sequences started per second; 0 = unbounded. */
  rate: number;
  /** Print progress lines. */
  verbose?: boolean;
  /**
   * Take a heap census of the broker (over its inspector) before and after the fuzz and report
   * which objects grew. Slow on a big heap: for finding what the fuzz leaves behind, not for CI.
   */
  heap?: boolean;
}

/** Latency figures of the well-behaved client's round trips, in ms. */
export interface RoundTrips {
  count: number;
  lost: number;
  p50: number;
  p99: number;
  max: number;
}

/** Everything a campaign measured. */
export interface CampaignResult {
  driver: DriverResult;
  /** Times the broker exited or printed an escaped exception or panic. */
  crashes: number;
  brokerExit: string | undefined;
  rssBaseline: number;
  rssPeak: number;
  rssAfter: number;
  good: RoundTrips;
  /** The broker's CPU use during the fuzz, in percent of one core. */
  brokerCpuPercent: number;
  /** From the end of the fuzz to a fresh client's first QoS 1 round trip. */
  recoveryMs: number;
  durationMs: number;
  /** The broker's last log lines, for a failure message. */
  logTail: string;
  /** What the fuzz left in the broker, from its `$SYS` topics (name → value). */
  state: Record<string, string>;
  /** With `heap`: the objects that grew during the fuzz. */
  heapGrowth?: string;
}

/** The `$SYS/broker/` figures that say how much state the fuzz left behind. */
const STATE_TOPICS = [
  "clients/total",
  "clients/disconnected",
  "subscriptions/count",
  "retained messages/count",
  "store/messages/count",
  "store/messages/bytes",
];

/**
 * How far the broker's RSS may grow during a campaign. What the fuzz leaves grows until its
 * limits stop it: up to 1,000 persistent sessions (max-sessions-per-address) whose queues
 * together stop at max-queued-bytes-total (128 MiB counted), a few hundred retained messages and
 * subscriptions. RSS runs at two to three times the counted queue total (V8's heap headroom and
 * garbage between collections), so it levels off a few hundred MiB above the baseline; with the
 * earlier 256 MiB default a 300,000-sequence run reached about 800 MiB.
 */
export const RSS_GROWTH_LIMIT = 512 * 1048576;

const DRIVER = new URL("./fuzz_driver.ts", import.meta.url).pathname;
/** A QoS 1 message not back after this long is counted lost. */
const LOST_AFTER_MS = 5_000;

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * Turns Nagle's algorithm off on an mqtt.js client's socket, as a latency-minded client does:
 * otherwise its PUBLISH waits behind its own unacknowledged PUBACK for the broker's delayed ACK
 * (about 40 ms on Linux), and the round trips measure the kernel, not the broker.
 */
function noDelay(c: Awaited<ReturnType<typeof connectMqttJs>>): void {
  const stream = c.client.stream as unknown as { setNoDelay?: (on: boolean) => void };
  stream.setNoDelay?.(true);
}

/** One QoS 1 round trip: publish to the client's own topic until the copy comes back. */
async function roundTrip(
  c: Awaited<ReturnType<typeof connectMqttJs>>,
  topic: string,
  n: number,
): Promise<number> {
  const payload = `rt-${n}`;
  const t0 = performance.now();
  const back = c.inbox.waitFor((m) => m.payload === payload, LOST_AFTER_MS, `round trip ${n}`);
  await Promise.all([c.publish(topic, payload, { qos: 1 }), back]);
  return performance.now() - t0;
}

/** Runs a campaign and returns its figures; the caller asserts on them. */
export async function runCampaign(o: CampaignOptions): Promise<CampaignResult> {
  const t0 = performance.now();
  // Errors only: at thousands of connections a second the INFO and WARN lines would be read by
  // this process, whose event loop times the good client. Escaped exceptions and panics are
  // printed whatever the level.
  const inspectPort = o.heap ? freePort() : 0;
  const broker = await startBrokerProcess({
    websocket: true,
    args: ["--mqttwk.broker.log-level=error"],
    denoFlags: o.heap ? [`--inspect=127.0.0.1:${inspectPort}`] : [],
  });
  const log = (s: string) => o.verbose && console.error(s);
  try {
    const url = `mqtt://127.0.0.1:${broker.port}`;
    const good = await connectMqttJs(url, { clientId: `good-${o.seed}`, clean: true });
    noDelay(good);
    const topic = `good/${o.seed}`;
    await good.subscribe(topic, 1);
    // Baseline once the broker has served a client: start-up allocations are not the fuzz's.
    for (let i = 0; i < 50; i++) await roundTrip(good, topic, -1 - i);
    const rss = new RssSampler(broker);
    const rssBaseline = rss.sample();
    // After the RSS baseline: the snapshot itself takes the broker's RSS up by the heap's size.
    const heapBefore = o.heap ? await heapCensus(inspectPort) : undefined;
    // RSS over time shows whether memory levels off (bounded) or keeps climbing.
    const rssLog = o.verbose
      ? setInterval(() => log(`rss: ${mib(rss.last)} MiB (peak ${mib(rss.peak)})`), 15_000)
      : undefined;
    const cpu0 = broker.cpuSeconds();
    const fuzzStart = performance.now();

    // At a lower priority: where the cores are short, the fuzzer slows down rather than the
    // broker and the timed client, so the round trips measure the broker under fuzz, not the
    // scheduler's choice among three busy processes on two cores.
    const driver = new Deno.Command("nice", {
      args: [
        "-n",
        "10",
        Deno.execPath(),
        "run",
        "--allow-all",
        DRIVER,
        `--port=${broker.port}`,
        `--ws-port=${broker.wsPort}`,
        `--ws-path=${broker.wsPath}`,
        `--seed=${o.seed}`,
        `--tcp-count=${o.tcpCount}`,
        `--ws-count=${o.wsCount}`,
        `--concurrency=${o.concurrency}`,
        `--rate=${o.rate}`,
      ],
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    let driverDone = false;
    const driverOut = (async () => {
      const [out, err] = await Promise.all([
        new Response(driver.stdout).text(),
        (async () => {
          let all = "";
          for await (const c of driver.stderr.pipeThrough(new TextDecoderStream())) {
            all += c;
            log(c.trimEnd());
          }
          return all;
        })(),
      ]);
      await driver.status;
      driverDone = true;
      return { out, err };
    })();

    const latencies: number[] = [];
    let lost = 0;
    let n = 0;
    while (!driverDone && !broker.exited()) {
      try {
        latencies.push(await roundTrip(good, topic, n++));
      } catch {
        lost++;
      }
      // Pacing: a round trip every few ms samples the whole fuzz without adding load.
      await new Promise((r) => setTimeout(r, 5));
    }
    const { out, err } = await driverOut;
    clearInterval(rssLog);
    const fuzzEnd = performance.now();
    const brokerCpuPercent = (broker.cpuSeconds() - cpu0) / ((fuzzEnd - fuzzStart) / 1000) * 100;
    const line = out.split("\n").find((l) => l.startsWith("FUZZ-RESULT "));
    if (!line) throw new Error(`the fuzz driver gave no result:\n${out}\n${err}`);
    const result = JSON.parse(line.slice("FUZZ-RESULT ".length)) as DriverResult;

    // Recovery: a client that was not there during the fuzz connects and round-trips.
    const fresh = await waitFor(async () => {
      try {
        return await connectMqttJs(url, { clientId: `fresh-${o.seed}` });
      } catch {
        return undefined;
      }
    }, { what: "a fresh client to connect after the fuzz", timeout: 15_000 });
    noDelay(fresh);
    await fresh.subscribe(`${topic}/fresh`, 1);
    await roundTrip(fresh, `${topic}/fresh`, 0);
    const recoveryMs = performance.now() - fuzzEnd;
    const state = await sysState(fresh);
    await fresh.close();
    await good.close();
    rss.stop();
    const heapGrowth = heapBefore
      ? describeGrowth(heapBefore, await heapCensus(inspectPort))
      : undefined;
    const sorted = latencies.slice().sort((a, b) => a - b);
    const exit = broker.exited();
    return {
      driver: result,
      crashes: (exit ? 1 : 0) + broker.crashSigns(),
      brokerExit: exit ? `code ${exit.code} signal ${exit.signal}` : undefined,
      rssBaseline,
      rssPeak: rss.peak,
      rssAfter: rss.last,
      good: {
        count: latencies.length,
        lost,
        p50: quantile(sorted, 0.5),
        p99: quantile(sorted, 0.99),
        max: sorted[sorted.length - 1] ?? NaN,
      },
      brokerCpuPercent,
      recoveryMs,
      durationMs: performance.now() - t0,
      logTail: broker.logs().slice(Deno.env.get("MQTTWK_HARDENING_V8_FLAGS") ? 0 : -4000),
      state,
      heapGrowth,
    };
  } finally {
    await broker.stop();
  }
}

/**
 * The broker's retained `$SYS/broker/` figures of STATE_TOPICS, as of its last `$SYS` interval:
 * the sessions, subscriptions, retained and queued messages the fuzz left.
 */
async function sysState(
  c: Awaited<ReturnType<typeof connectMqttJs>>,
): Promise<Record<string, string>> {
  await c.subscribe("$SYS/broker/#", 0);
  const out: Record<string, string> = {};
  try {
    await c.inbox.waitFor(
      () => {
        for (const m of c.inbox.messages) {
          const name = m.topic.slice("$SYS/broker/".length);
          if (STATE_TOPICS.includes(name)) out[name] = String(m.payload);
        }
        return Object.keys(out).length === STATE_TOPICS.length;
      },
      3_000,
      "the $SYS state figures",
    );
  } catch {
    // $SYS publishing off, or some figures missing: report what came.
  }
  return out;
}

/** The figures of a campaign, one per line, for the test output. */
export function describeCampaign(r: CampaignResult): string {
  const d = r.driver;
  const o = d.outcomes;
  const lines = [
    `seed ${d.seed}`,
    `sequences sent: ${d.tcp} over TCP + ${d.ws} over WebSocket = ${d.tcp + d.ws} ` +
    `(${mib(d.bytesSent)} MiB) in ${(d.durationMs / 1000).toFixed(1)} s ` +
    `(${Math.round((d.tcp + d.ws) / (d.durationMs / 1000))}/s)`,
    `outcomes: ${o.answered} answered then closed, ${o.closed} closed without answer, ` +
    `${o["refused-http"]} refused upgrades (HTTP 4xx), ${o.hung} left open, ` +
    `${o.malformed} malformed answers, ${o["no-connect"]} refused connections`,
    `crashes: ${r.crashes}${r.brokerExit ? ` (broker exited: ${r.brokerExit})` : ""}`,
    `broker CPU during the fuzz: ${r.brokerCpuPercent.toFixed(0)}% of one core`,
    `broker RSS: baseline ${mib(r.rssBaseline)} MiB, peak ${mib(r.rssPeak)} MiB, ` +
    `after ${mib(r.rssAfter)} MiB`,
    `good client: ${r.good.count} QoS 1 round trips, ${r.good.lost} lost, ` +
    `p50 ${r.good.p50.toFixed(2)} ms, p99 ${r.good.p99.toFixed(2)} ms, max ${
      r.good.max.toFixed(2)
    } ms`,
    `recovery: a fresh client round-tripped ${r.recoveryMs.toFixed(0)} ms after the fuzz`,
    `duration: ${(r.durationMs / 1000).toFixed(1)} s`,
    `left in the broker ($SYS): ${
      Object.entries(r.state).map(([k, v]) => `${k} ${v}`).join(", ") || "(no $SYS figures)"
    }`,
  ];
  lines.push(formatFigures("fuzz campaign", {
    unit: "sequences",
    sent: d.tcp + d.ws,
    acknowledged: r.good.count,
    lost: r.good.lost,
    crashes: r.crashes,
    peakRss: r.rssPeak,
    recoveryMs: r.recoveryMs,
    note: `acknowledged/lost: the good client's QoS 1 round trips (p99 ${
      r.good.p99.toFixed(2)
    } ms); ${d.failureCount} connections left open or answered malformed`,
  }));
  if (r.heapGrowth) lines.push(r.heapGrowth);
  for (const f of d.failures) {
    lines.push(
      `FAILED ${f.transport} seed ${f.seed} index ${f.index}: ${f.outcome}, ${f.why} ` +
        `[${f.mutations.join(" ")}]; replay: deno run -A tests/hardening/fuzz_driver.ts ` +
        `--port PORT${f.transport === "ws" ? " --ws-port WSPORT --ws" : ""} ` +
        `--seed ${f.seed} --replay ${f.index}`,
    );
  }
  return lines.join("\n");
}

/** A random campaign seed, unless MQTTWK_FUZZ_SEED names one (to replay a failed run). */
export function campaignSeed(fresh = false): number {
  const fixed = fresh ? undefined : Deno.env.get("MQTTWK_FUZZ_SEED");
  return fixed ? Number(fixed) : crypto.getRandomValues(new Uint32Array(1))[0];
}

if (import.meta.main) {
  const { values: a } = parseArgs({
    args: Deno.args,
    options: {
      seed: { type: "string" },
      count: { type: "string", default: "1000000" },
      "ws-share": { type: "string", default: "0.2" },
      concurrency: { type: "string", default: "64" },
      rate: { type: "string", default: "1200" },
      heap: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (a.help) {
    console.log(
      "deno task fuzz [--count N=1000000] [--seed S] [--ws-share 0.2] [--concurrency 64] " +
        "[--rate R=1200 (sequences/s, 0 = unbounded)] [--heap (heap census before/after)]\n" +
        "Exits 1 if the broker crashed, a connection was left open or answered malformed bytes, " +
        "the good client lost a message or its p99 exceeded 10 ms.",
    );
    Deno.exit(0);
  }
  const count = Number(a.count);
  const wsCount = Math.round(count * Number(a["ws-share"]));
  const seed = a.seed !== undefined ? Number(a.seed) : campaignSeed();
  console.log(`fuzz campaign: seed ${seed}, ${count} sequences`);
  const r = await runCampaign({
    seed,
    tcpCount: count - wsCount,
    wsCount,
    concurrency: Number(a.concurrency),
    rate: Number(a.rate),
    verbose: true,
    heap: a.heap,
  });
  console.log(describeCampaign(r));
  const ok = r.crashes === 0 && r.driver.failureCount === 0 && r.good.lost === 0 &&
    r.good.p99 <= 10 && r.rssPeak - r.rssBaseline < RSS_GROWTH_LIMIT;
  if (!ok || Deno.env.get("MQTTWK_HARDENING_V8_FLAGS")) console.log(r.logTail);
  Deno.exit(ok ? 0 : 1);
}
