/**
 * MqttWk benchmark suite: runs MqttWk, Mosquitto and Aedes one after another with the same
 * load generator, alternating brokers over several rounds, and prints medians and ratios.
 *
 *   deno task bench                         # full suite, 3 rounds (~15 minutes)
 *   deno task bench --smoke                 # a few seconds, for CI
 *   deno task bench --scenarios fanin,lat --brokers mosquitto,aedes --rounds 1 --json out.json
 *
 * See bench/README.md.
 */

import { parseArgs } from "node:util";
import {
  ALL_BROKERS,
  type BrokerName,
  provision,
  type RunningBroker,
  startBroker,
  Unavailable,
} from "./brokers.ts";
import { sleep, withTimeout } from "./client.ts";
import {
  brokerRuns,
  buildScenarios,
  DEFAULT_WINDOW,
  emptyResult,
  MAX_BATCH,
  MAX_UNACKED,
  type RunResult,
  runScenario,
  type Scenario,
  type ScenarioRun,
  type Timing,
} from "./scenarios.ts";
import { LABEL, medians, report } from "./report.ts";
import { fmtNum, fmtSig } from "./stats.ts";

const USAGE = `usage: deno task bench [options]
  --smoke              a few seconds in total: one tiny scenario per broker (CI)
  --rounds N           rounds, brokers alternating within each (default 3, smoke 1)
  --duration S         measurement window per run in seconds (default 2, smoke 1)
  --warmup S           warm-up before each window in seconds (default 0.5, smoke 0.3;
                       the lat scenarios warm up at least 5 s)
  --scenarios LIST     comma-separated scenario names or prefixes (e.g. fanin,p2p-q1,lat,conn)
  --brokers LIST       comma-separated: ${ALL_BROKERS.join(",")} (default: all)
  --connections N      idle connections for the conn scenario (default 19000, smoke 200);
                       for conn-cluster the total over its 3 nodes (default 50000)
  --window N           closed-loop window of the throughput scenarios, in deliveries (default
                       ${DEFAULT_WINDOW})
  --json FILE          also write all results as JSON
  --strict             a broker that cannot be provisioned is an error (default when CI=true)
  --list               list scenarios and exit`;

interface Options {
  smoke: boolean;
  rounds: number;
  timing: Timing;
  scenarios: Scenario[];
  brokers: BrokerName[];
  json?: string;
  strict: boolean;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      smoke: { type: "boolean", default: false },
      rounds: { type: "string" },
      duration: { type: "string" },
      warmup: { type: "string" },
      scenarios: { type: "string" },
      brokers: { type: "string" },
      connections: { type: "string" },
      json: { type: "string" },
      window: { type: "string" },
      strict: { type: "boolean", default: false },
      list: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const num = (v: string | undefined, def: number, what: string, min = 0) => {
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) fail(`bad ${what}: ${v}`);
    return n;
  };
  const smoke = values.smoke;
  const connections = Math.floor(num(values.connections, smoke ? 200 : 19_000, "--connections", 1));
  const clusterConnections = Math.floor(
    num(values.connections, smoke ? 600 : 50_000, "--connections", 3),
  );
  let scenarios = buildScenarios({ connections, clusterConnections, smoke });
  if (values.list) {
    for (const s of scenarios) {
      console.log(`${s.name.padEnd(22)} ${s.description}${s.optIn ? " (name it exactly)" : ""}`);
    }
    Deno.exit(0);
  }
  if (values.scenarios) {
    const wanted = values.scenarios.split(",").map((x) => x.trim()).filter(Boolean);
    const all = smoke
      ? buildScenarios({ connections, clusterConnections, smoke: false }).concat(scenarios)
      : scenarios;
    const seen = new Set<string>();
    scenarios = all.filter((s) => {
      // Opt-in scenarios only by their exact name (so "conn" does not pull in conn-cluster).
      // A trailing "$" asks for that name exactly (so "conn$" is not conn-tls as well).
      const match = s.optIn
        ? wanted.includes(s.name) || wanted.includes(`${s.name}$`)
        : wanted.some((w) => w.endsWith("$") ? s.name === w.slice(0, -1) : s.name.startsWith(w));
      if (seen.has(s.name) || !match) return false;
      seen.add(s.name);
      return true;
    });
    if (smoke) {
      // Smoke-sized variants of whatever was asked for.
      scenarios = scenarios.map((s) =>
        s.kind === "conn-cluster"
          ? s
          : s.kind === "conn"
          ? { ...s, connections: Math.min(s.connections ?? connections, connections) }
          : {
            ...s,
            publishers: Math.min(s.publishers, 2),
            subscribers: Math.min(s.subscribers, 2),
            ...(s.messages ? { messages: Math.min(s.messages, 200) } : {}),
            ...(s.storm ? { storm: Math.min(s.storm, 20) } : {}),
            ...(s.kind === "handshake" ? { connections: 20 } : {}),
          }
      );
    }
    if (scenarios.length === 0) fail(`no scenario matches ${values.scenarios} (see --list)`);
  } else scenarios = scenarios.filter((s) => !s.optIn);
  if (scenarios.some((s) => s.kind === "conn") && connections > 19_500) {
    fail("--connections: the generator can hold at most ~19,500 sockets");
  }
  if (scenarios.some((s) => s.kind === "conn-cluster") && clusterConnections > 58_200) {
    fail("--connections: conn-cluster holds at most 3 x 19,400 connections");
  }
  // conn-cluster takes minutes per round: one round unless asked for more.
  const onlyCluster = scenarios.every((s) => s.kind === "conn-cluster");
  let brokers = ALL_BROKERS;
  if (values.brokers) {
    brokers = values.brokers.split(",").map((x) => x.trim()).filter(Boolean) as BrokerName[];
    for (const b of brokers) {
      if (!ALL_BROKERS.includes(b)) fail(`unknown broker ${b}; known: ${ALL_BROKERS.join(",")}`);
    }
  }
  return {
    smoke,
    rounds: Math.floor(num(values.rounds, smoke || onlyCluster ? 1 : 3, "--rounds", 1)),
    timing: {
      durationMs: num(values.duration, smoke ? 1 : 2, "--duration", 0.1) * 1000,
      warmupMs: num(values.warmup, smoke ? 0.3 : 0.5, "--warmup", 0) * 1000,
      window: Math.floor(num(values.window, DEFAULT_WINDOW, "--window", 1)),
    },
    scenarios,
    brokers,
    json: values.json,
    strict: values.strict || Deno.env.get("CI") === "true",
  };
}

function fail(msg: string): never {
  console.error(`bench: ${msg}\n\n${USAGE}`);
  Deno.exit(2);
}

async function main() {
  const o = parseOptions();
  const started = performance.now();

  // Provision every broker up front so that a missing one is known before minutes of running.
  const versions: Record<string, string> = {};
  const skipped: Record<string, string> = {};
  let provisionFailed = false;
  for (const b of o.brokers) {
    try {
      versions[b] = await provision(b);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      skipped[b] = why;
      // A broker not written yet is not the bench's failure; anything else is, under --strict.
      const notYet = e instanceof Unavailable && b.startsWith("mqttwk") &&
        why.includes("main.ts does not exist");
      if (o.strict && !notYet) {
        console.error(`bench: ${b} unavailable: ${why}`);
        provisionFailed = true;
      } else {
        console.error(`bench: SKIP ${b}: ${why}`);
      }
    }
  }
  if (provisionFailed) Deno.exit(1);
  const brokers = o.brokers.filter((b) => !(b in skipped));
  if (brokers.length === 0) {
    console.error("bench: no broker available");
    Deno.exit(1);
  }

  console.log(
    `MqttWk bench: ${o.scenarios.length} scenario(s) x ${brokers.length} broker(s) x ` +
      `${o.rounds} round(s); warm-up ${o.timing.warmupMs / 1000} s, window ${
        o.timing.durationMs / 1000
      } s; closed-loop window ${o.timing.window} deliveries, ${MAX_UNACKED} unacked QoS 1 ` +
      `per publisher, ${MAX_BATCH} PUBLISHes per write`,
  );
  for (const b of brokers) console.log(`  ${LABEL[b].padEnd(15)} ${versions[b]}`);
  for (const [b, why] of Object.entries(skipped)) {
    console.log(`  ${LABEL[b as BrokerName].padEnd(15)} SKIPPED: ${why}`);
  }

  const results: RunResult[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    // Rotate the broker order every round so none always runs first or last.
    const order = brokers.map((_, i) => brokers[(i + round - 1) % brokers.length]);
    for (const s of o.scenarios) {
      for (const b of order) {
        if (!brokerRuns(b, s)) continue;
        const t0 = performance.now();
        const r = await runOne(b, s, o.timing, round);
        results.push(r);
        const took = ((performance.now() - t0) / 1000).toFixed(1);
        const tag = `[${round}/${o.rounds}] ${s.name} ${b} (${took} s)`;
        if (!r.ok) console.error(`${tag}: FAILED: ${r.error}`);
        else if (s.kind === "cluster") {
          const { clusterLine } = await import("./cluster_traffic.ts");
          console.error(`${tag}: ${clusterLine(r).replace(/^\[\d+\] \S+: /, "")}`);
        } else if (s.kind === "conn" || s.kind === "conn-cluster") {
          console.error(
            `${tag}: ${fmtNum(r.connections ?? 0)} conns in ${
              fmtSig(r.connectSeconds ?? NaN)
            } s, ` +
              `${fmtSig(r.rssPerConnKiB ?? NaN)} KiB/conn`,
          );
        } else {
          console.error(
            `${tag}: ${fmtNum(r.msgsPerSec)} msg/s, p50 ${fmtSig(r.p50Ms)} ms, p99 ${
              fmtSig(r.p99Ms)
            } ms, broker CPU ${fmtNum(r.brokerCpuPct)}%, gen CPU ${fmtNum(r.genCpuPct)}%, other ${
              fmtNum(r.otherCpuPct)
            }%`,
          );
        }
      }
    }
  }

  const ms = medians(results, o.scenarios, brokers);
  const rs = report(ms, results, o.scenarios, brokers);
  if (o.scenarios.some((s) => s.kind === "cluster")) {
    const { clusterReport } = await import("./cluster_traffic.ts");
    console.log(clusterReport(results, o.scenarios));
  }
  const elapsed = (performance.now() - started) / 1000;
  console.log(`\ntotal time ${fmtSig(elapsed)} s`);

  if (o.json) {
    const json = {
      date: new Date().toISOString(),
      machine: { cpus: navigator.hardwareConcurrency, os: Deno.build.os, deno: Deno.version.deno },
      options: {
        smoke: o.smoke,
        rounds: o.rounds,
        warmupMs: o.timing.warmupMs,
        durationMs: o.timing.durationMs,
        window: o.timing.window,
        maxUnacked: MAX_UNACKED,
        maxBatch: MAX_BATCH,
      },
      versions,
      skipped,
      scenarios: o.scenarios,
      results,
      medians: ms,
      ratios: rs,
      elapsedSeconds: elapsed,
    };
    Deno.writeTextFileSync(o.json, JSON.stringify(json, (_k, v) => Number.isNaN(v) ? null : v, 2));
  }
  const failedRuns = results.filter((r) => !r.ok).length;
  if (failedRuns > 0) {
    console.error(`bench: ${failedRuns} run(s) failed`);
    Deno.exit(1);
  }
  Deno.exit(0);
}

/** The broker of the run in progress, stopped on SIGINT/SIGTERM so that none is orphaned. */
let current: RunningBroker | null = null;

async function runOne(b: BrokerName, s: Scenario, t: Timing, round: number): Promise<RunResult> {
  const base = (error: string): RunResult => ({ ...emptyResult(b, s.name, round), error });
  if (s.kind === "conn-cluster") {
    // Starts its own Redis and 3 nodes (killed on exit by cluster_conn.ts); bounded inside.
    try {
      const { runConnCluster } = await import("./cluster_conn.ts");
      const r = await runConnCluster({ connections: s.connections!, scenario: s.name, round });
      console.log(r.text);
      return r.result;
    } catch (e) {
      return base(e instanceof Error ? e.message : String(e));
    }
  }
  if (s.kind === "cluster") {
    // Starts its own Redis and 2 nodes, stopped before it returns.
    const { runClusterScenario } = await import("./cluster_traffic.ts");
    return await runClusterScenario(s, t, round, b);
  }
  let broker: RunningBroker | undefined;
  // A free port can be taken by another process between our probe and the broker's bind
  // (several listeners per broker make that likelier): start again on fresh ports.
  for (let attempt = 1; broker === undefined; attempt++) {
    try {
      broker = await startBroker(b, s.transport ? ["tcp", s.transport] : ["tcp"]);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      if (attempt < 3 && /EADDRINUSE|address already in use/i.test(why)) continue;
      return base(`start: ${why}`);
    }
  }
  current = broker;
  let run: ScenarioRun | undefined;
  try {
    // Setup-heavy scenarios run to completion rather than for a window: give them minutes.
    const long = ["conn", "handshake", "drain", "retained-storm"].includes(s.kind);
    const limit = long ? 240_000 : t.warmupMs + t.durationMs + 60_000;
    const p = runScenario(broker, s, t, round);
    p.then((r) => run = r, () => {});
    run = await withTimeout(p, limit, `${s.name} on ${b}`);
    return run.result;
  } catch (e) {
    return base(e instanceof Error ? e.message : String(e));
  } finally {
    await broker.stop();
    current = null;
    await run?.cleanup();
    await sleep(100);
  }
}

if (import.meta.main) {
  if (Deno.build.os !== "linux") {
    console.error("bench: Linux only (reads /proc for broker CPU and memory)");
    Deno.exit(2);
  }
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, async () => {
      console.error(`bench: ${sig}, stopping`);
      await current?.stop();
      Deno.exit(130);
    });
  }
  await main();
}
