/**
 * Cross-node scenarios (kind "cluster", see scenario_list.ts): a throw-away redis-server and two
 * MqttWk cluster nodes A and B on free ports, then the scenario twice in alternating order: once
 * with publishers and subscribers on A ("one node"), once with publishers on A and subscribers on
 * B ("cross-node"). The result is the cross-node run, with the one-node run and the ratio in
 * `detail`; the CPU figures are the sum over A, B and redis-server, each also given alone.
 *
 *   deno task bench --scenarios cluster --brokers mqttwk
 *   deno run -A bench/cluster_traffic.ts [--rounds 3] [--scenarios cluster-fanin] [--duration 2]
 *     [--window 1024]  (deliveries outstanding in the closed loop)
 *   MQTTWK_BENCH_BASELINE=/tmp/base deno run -A bench/cluster_traffic.ts --baseline  # before/after
 */

import { parseArgs } from "node:util";
import { BASELINE_ROOT, type BrokerName, type RunningBroker, startBroker } from "./brokers.ts";
import {
  DEFAULT_WINDOW,
  emptyResult,
  type RunResult,
  runScenario,
  type Scenario,
  type Timing,
} from "./scenarios.ts";
import { clusterScenarios } from "./scenario_list.ts";
import { fmtNum, fmtSig, median, table } from "./stats.ts";
import { startRedis } from "../tests/helpers/redis.ts";

/** MQTTWK_BENCH_REDIS_STATS=1: print Redis's command counts of each run (stderr). */
const REDIS_STATS = Deno.env.get("MQTTWK_BENCH_REDIS_STATS") === "1";

/** One node against cross-node, as kept in the cross-node result's `detail`. */
export interface ClusterDetail {
  oneNode: RunResult;
  /** cross-node msgs/s / one-node msgs/s. */
  ratio: number;
  redisCpuPctCross: number;
  redisCpuPctOne: number;
}

/**
 * Runs `s` (kind "cluster") once in each arrangement on a fresh cluster; alternates by round.
 * `broker`: "mqttwk-baseline" runs the nodes from MQTTWK_BENCH_BASELINE's checkout.
 */
export async function runClusterScenario(
  s: Scenario,
  t: Timing,
  round: number,
  broker: BrokerName = "mqttwk",
): Promise<RunResult> {
  const name = broker;
  const redis = await startRedis();
  const pidLine = (await redis.cli("info", "server")).match(/process_id:(\d+)/);
  const redisPid = Number(pidLine?.[1] ?? NaN);
  const nodes: RunningBroker[] = [];
  try {
    const cluster = (id: string) => [
      "--mqttwk.broker.cluster-on=true",
      `--node-id=${id}`,
      "--redis.host=127.0.0.1",
      `--redis.port=${redis.port}`,
    ];
    nodes.push(await startBroker(broker, ["tcp"], cluster(`bench-a-${round}`)));
    nodes.push(await startBroker(broker, ["tcp"], cluster(`bench-b-${round}`)));
    const [a, b] = nodes;
    const shape: Scenario = { ...s, kind: s.shape! };
    const run = async (cross: boolean) => {
      const broker: RunningBroker = {
        ...a,
        subPort: cross ? b.port : a.port,
        otherPids: { "node B": b.pid, "redis": redisPid },
      };
      // Own topics and client ids per arrangement: the other's persistent sessions stay offline.
      const sc = { ...shape, topicRoot: cross ? "x" : "one" };
      if (REDIS_STATS) await redis.cli("config", "resetstat");
      const r = await runScenario(broker, sc, t, round * 10 + (cross ? 2 : 1));
      if (REDIS_STATS) {
        // Redis commands per delivery: how well what crosses Redis is batched.
        const stats = await redis.cli("info", "commandstats");
        const lines = stats.split("\n").filter((l) => l.startsWith("cmdstat_")).map((l) =>
          l.replace(/^cmdstat_([\w|]+):calls=(\d+),usec=(\d+).*/, "$1 $2 calls $3 us")
        );
        console.error(`  ${s.name} ${name} ${cross ? "cross" : "one"}: ${lines.join("; ")}`);
      }
      await r.cleanup();
      return { ...r.result, scenario: s.name, round };
    };
    const order = round % 2 === 1 ? [false, true] : [true, false];
    const res: Record<string, RunResult> = {};
    for (const cross of order) res[cross ? "cross" : "one"] = await run(cross);
    const cross = res.cross;
    const one = res.one;
    const redisCpu = (r: RunResult) =>
      (r.detail?.cpuPct as Record<string, number> | undefined)?.redis ?? NaN;
    const detail: ClusterDetail = {
      oneNode: one,
      ratio: cross.msgsPerSec / one.msgsPerSec,
      redisCpuPctCross: redisCpu(cross),
      redisCpuPctOne: redisCpu(one),
    };
    cross.detail = { ...cross.detail, ...detail };
    if (cross.ok && !one.ok) {
      cross.ok = false;
      cross.error = `one-node run: ${one.error}`;
    }
    return cross;
  } catch (e) {
    return { ...emptyResult(broker, s.name, round), error: String(e) };
  } finally {
    for (const n of nodes) await n.stop();
    await redis.kill();
  }
}

/** A + B + redis-server CPU microseconds per delivery. */
function cpuUs(r: RunResult): number {
  return (r.brokerCpuPct * 1e4) / r.msgsPerSec;
}

/** The table of the cluster scenarios: cross-node against one node, medians over rounds. */
export function clusterReport(results: RunResult[], scenarios: Scenario[]): string {
  const rows: string[][] = [];
  const brokers: BrokerName[] = ["mqttwk-baseline", "mqttwk"];
  for (
    const [s, b] of scenarios.filter((x) => x.kind === "cluster").flatMap((s) =>
      brokers.map((b) => [s, b] as const)
    )
  ) {
    const rs = results.filter((r) =>
      r.scenario === s.name && r.broker === b && r.ok && r.detail?.oneNode
    );
    if (rs.length === 0) continue;
    const d = (r: RunResult) => r.detail as unknown as ClusterDetail;
    const m = (f: (r: RunResult) => number) => median(rs.map(f));
    const lat = s.shape === "latency";
    rows.push([
      b === "mqttwk" ? s.name : `${s.name} (baseline)`,
      fmtNum(m((r) => d(r).oneNode.msgsPerSec)),
      fmtNum(m((r) => r.msgsPerSec)),
      lat ? "-" : fmtSig(m((r) => d(r).ratio)),
      `${fmtSig(m((r) => d(r).oneNode.p50Ms))} / ${fmtSig(m((r) => d(r).oneNode.p99Ms))}`,
      `${fmtSig(m((r) => r.p50Ms))} / ${fmtSig(m((r) => r.p99Ms))}`,
      `${fmtNum(m((r) => d(r).redisCpuPctOne))} / ${fmtNum(m((r) => d(r).redisCpuPctCross))}`,
      `${fmtNum(m((r) => d(r).oneNode.brokerCpuPct))} / ${fmtNum(m((r) => r.brokerCpuPct))}`,
      // CPU per delivery: steadier than msg/s when other processes compete for the cores.
      `${fmtSig(m((r) => cpuUs(d(r).oneNode)))} / ${fmtSig(m(cpuUs))}`,
      String(rs.reduce((a, r) => a + r.lost + d(r).oneNode.lost, 0)),
      String(rs.length),
    ]);
  }
  if (rows.length === 0) return "";
  return "\nCross-node (publishers on node A, subscribers on node B) against one node " +
    "(everyone on A), same cluster, medians over rounds (ratio: median of the rounds' own)\n" +
    table(
      [
        "scenario",
        "one node msg/s",
        "cross msg/s",
        "ratio",
        "one p50/p99 ms",
        "cross p50/p99 ms",
        "redis CPU% one/cross",
        "A+B+redis CPU% one/cross",
        "CPU us/msg one/cross",
        "lost",
        "rounds",
      ],
      rows,
    );
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "3" },
      scenarios: { type: "string" },
      duration: { type: "string", default: "2" },
      warmup: { type: "string", default: "0.5" },
      baseline: { type: "boolean", default: false },
      window: { type: "string", default: String(DEFAULT_WINDOW) },
    },
  });
  if (values.baseline && !BASELINE_ROOT) throw new Error("--baseline needs MQTTWK_BENCH_BASELINE");
  const brokers: BrokerName[] = values.baseline ? ["mqttwk-baseline", "mqttwk"] : ["mqttwk"];
  const wanted = values.scenarios?.split(",") ?? [""];
  const scenarios = clusterScenarios().filter((s) => wanted.some((w) => s.name.startsWith(w)));
  const t: Timing = {
    durationMs: Number(values.duration) * 1000,
    warmupMs: Number(values.warmup) * 1000,
    window: Number(values.window),
  };
  const results: RunResult[] = [];
  const rounds = Number(values.rounds);
  for (let round = 1; round <= rounds; round++) {
    for (const s of scenarios) {
      // Alternate which checkout goes first.
      const order = round % 2 ? brokers : [...brokers].reverse();
      for (const b of order) {
        const r = await runClusterScenario(s, t, round, b);
        results.push(r);
        console.error(`${clusterLine(r)}${b === "mqttwk" ? "" : " (baseline)"}`);
      }
    }
  }
  console.log(clusterReport(results, scenarios));
  Deno.exit(results.every((r) => r.ok) ? 0 : 1);
}

/** One progress line of a cluster run. */
export function clusterLine(r: RunResult): string {
  const tag = `[${r.round}] ${r.scenario}`;
  if (!r.ok) return `${tag}: FAILED: ${r.error}`;
  const d = r.detail as unknown as ClusterDetail;
  return `${tag}: one node ${fmtNum(d.oneNode.msgsPerSec)} msg/s p99 ${
    fmtSig(d.oneNode.p99Ms)
  } ms, cross ${fmtNum(r.msgsPerSec)} msg/s p99 ${fmtSig(r.p99Ms)} ms, ratio ${
    fmtSig(d.ratio)
  }, redis CPU ${fmtNum(d.redisCpuPctOne)}% / ${fmtNum(d.redisCpuPctCross)}%, cross CPU% ${
    Object.entries((r.detail?.cpuPct ?? {}) as Record<string, number>).map(([k, v]) =>
      `${k.startsWith("mqttwk") ? "node A" : k} ${fmtNum(v)}`
    ).join(", ")
  }, gen ${fmtNum(r.genCpuPct)}%, lost ${r.lost + d.oneNode.lost}`;
}
