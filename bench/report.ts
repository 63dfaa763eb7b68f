/**
 * The bench's report: medians over rounds, the per-scenario tables, the ratio tables (MqttWk
 * against Mosquitto and Aedes, against a baseline checkout, durable against memory, MQTT 5.0
 * against 3.1.1) and the warning about a busy machine.
 */

import type { BrokerName } from "./brokers.ts";
import { brokerRuns, type RunResult, type Scenario } from "./scenarios.ts";
import { mqtt5Report } from "./report_v5.ts";
import { fmtNum, fmtSig, median, table } from "./stats.ts";

/** Display names of the brokers. */
export const LABEL: Record<BrokerName, string> = {
  "mqttwk": "MqttWk",
  "mqttwk-durable": "MqttWk durable",
  "mqttwk-baseline": "MqttWk baseline",
  "mosquitto": "Mosquitto",
  "aedes": "Aedes",
};

/** Medians over the successful rounds of one scenario on one broker. */
export interface Median {
  scenario: string;
  broker: BrokerName;
  rounds: number;
  msgsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  brokerCpuPct: number;
  brokerPeakRssMiB: number;
  genCpuPct: number;
  otherCpuPct: number;
  lost: number;
  /** Broker CPU microseconds per delivery (median of the rounds' own values). */
  cpuUsPerMsg: number;
  /** MQTT 5.0 runs: percentage of deliveries that came with a topic alias alone. */
  aliasedPct?: number;
  connectSeconds?: number;
  connectRate?: number;
  rssPerConnKiB?: number;
  connections?: number;
}

/** Medians per scenario and broker, over the successful rounds. */
export function medians(
  results: RunResult[],
  scenarios: Scenario[],
  brokers: BrokerName[],
): Median[] {
  const out: Median[] = [];
  for (const s of scenarios) {
    for (const b of brokers) {
      const rs = results.filter((r) => r.scenario === s.name && r.broker === b && r.ok);
      if (rs.length === 0) continue;
      const m = (f: (r: RunResult) => number | undefined) => median(rs.map((r) => f(r) ?? NaN));
      out.push({
        scenario: s.name,
        broker: b,
        rounds: rs.length,
        msgsPerSec: m((r) => r.msgsPerSec),
        p50Ms: m((r) => r.p50Ms),
        p99Ms: m((r) => r.p99Ms),
        brokerCpuPct: m((r) => r.brokerCpuPct),
        brokerPeakRssMiB: m((r) => r.brokerPeakRssMiB),
        genCpuPct: m((r) => r.genCpuPct),
        otherCpuPct: m((r) => r.otherCpuPct),
        lost: m((r) => r.lost),
        cpuUsPerMsg: m((r) => (r.brokerCpuPct * 1e4) / r.msgsPerSec),
        ...(s.protocol === 5 ? { aliasedPct: m((r) => r.aliasedPct) } : {}),
        ...(s.kind === "conn" || s.kind === "conn-cluster"
          ? {
            connections: m((r) => r.connections),
            connectSeconds: m((r) => r.connectSeconds),
            connectRate: m((r) => r.connectRate),
            rssPerConnKiB: m((r) => r.rssPerConnKiB),
          }
          : {}),
      });
    }
  }
  return out;
}

/** MqttWk's median over Mosquitto's and Aedes' for one metric of one scenario. */
export interface Ratio {
  scenario: string;
  metric: string;
  vsMosquitto: number;
  vsAedes: number;
}

function ratios(ms: Median[], scenarios: Scenario[]): Ratio[] {
  const get = (s: string, b: BrokerName) => ms.find((m) => m.scenario === s && m.broker === b);
  const out: Ratio[] = [];
  for (const s of scenarios) {
    // MqttWk only: nothing to compare with (cluster: see cluster_traffic.ts's own table).
    if (s.kind === "conn-cluster" || s.kind === "cluster") continue;
    const w = get(s.name, "mqttwk");
    const mo = get(s.name, "mosquitto");
    const ae = get(s.name, "aedes");
    const r = (metric: string, f: (m: Median) => number | undefined) => {
      const v = w ? f(w) ?? NaN : NaN;
      out.push({
        scenario: s.name,
        metric,
        vsMosquitto: mo ? v / (f(mo) ?? NaN) : NaN,
        vsAedes: ae ? v / (f(ae) ?? NaN) : NaN,
      });
    };
    if (s.kind === "conn") {
      r("connect rate", (m) => m.connectRate);
      r("RSS/connection", (m) => m.rssPerConnKiB);
    } else {
      if (s.kind !== "latency") r("msgs/s", (m) => m.msgsPerSec);
      r("p99", (m) => m.p99Ms);
    }
  }
  return out;
}

/** Prints every table; returns the MqttWk/Mosquitto/Aedes ratios (for the JSON output). */
export function report(
  ms: Median[],
  results: RunResult[],
  scenarios: Scenario[],
  brokers: BrokerName[],
): Ratio[] {
  const lines: string[] = [];
  for (const s of scenarios) {
    const gen = results.find((r) => r.scenario === s.name && r.generator)?.generator;
    lines.push("", `== ${s.name}: ${s.description}${gen ? ` (${gen} connect generator)` : ""}`);
    const rows = brokers.filter((b) => brokerRuns(b, s)).map((b) => {
      const m = ms.find((x) => x.scenario === s.name && x.broker === b);
      const failed = results.filter((r) => r.scenario === s.name && r.broker === b && !r.ok);
      const note = failed.length ? `${failed.length} failed: ${failed[0].error}` : "";
      const conn = s.kind === "conn" || s.kind === "conn-cluster";
      if (!m) return [LABEL[b], "FAILED", ...Array(conn ? 8 : 7).fill("-"), note];
      if (conn) {
        return [
          LABEL[b],
          fmtNum(m.connections ?? NaN),
          fmtSig(m.connectSeconds ?? NaN),
          fmtNum(m.connectRate ?? NaN),
          fmtSig(m.rssPerConnKiB ?? NaN),
          fmtSig(m.brokerPeakRssMiB),
          fmtNum(m.brokerCpuPct),
          fmtNum(m.genCpuPct),
          fmtNum(m.otherCpuPct),
          note,
        ];
      }
      return [
        LABEL[b],
        fmtNum(m.msgsPerSec),
        fmtSig(m.p50Ms),
        fmtSig(m.p99Ms),
        fmtNum(m.brokerCpuPct),
        fmtSig(m.brokerPeakRssMiB),
        fmtNum(m.genCpuPct),
        fmtNum(m.otherCpuPct),
        m.lost ? fmtNum(m.lost) : "",
        note,
      ];
    });
    const headers = s.kind === "conn" || s.kind === "conn-cluster"
      ? [
        "broker",
        "connections",
        "connect s",
        "conn/s",
        "RSS/conn KiB",
        "peak RSS MiB",
        "broker CPU%",
        "gen CPU%",
        "other CPU%",
        "",
      ]
      : [
        "broker",
        "msgs/s recv",
        "p50 ms",
        "p99 ms",
        "broker CPU%",
        "peak RSS MiB",
        "gen CPU%",
        "other CPU%",
        "lost",
        "",
      ];
    lines.push(table(headers, rows));
  }

  const rs = ratios(ms, scenarios);
  if (rs.length) {
    lines.push(
      "",
      "== Ratios (medians of rounds; msgs/s and conn/s: higher is better for MqttWk, " +
        "p99 and RSS/connection: lower is better)",
      table(
        ["scenario", "metric", "MqttWk/Mosquitto", "MqttWk/Aedes"],
        rs.map((r) => [r.scenario, r.metric, fmtSig(r.vsMosquitto), fmtSig(r.vsAedes)]),
        2,
      ),
    );
  }

  if (brokers.includes("mqttwk-baseline")) {
    const pair = (s: Scenario, b: BrokerName) =>
      ms.find((m) => m.scenario === s.name && m.broker === b);
    const rows: string[][] = [];
    for (const s of scenarios) {
      const now = pair(s, "mqttwk");
      const base = pair(s, "mqttwk-baseline");
      if (!now || !base) continue;
      const row = (metric: string, a: number | undefined, b: number | undefined) =>
        rows.push([
          s.name,
          metric,
          fmtSig(b ?? NaN),
          fmtSig(a ?? NaN),
          fmtSig((a ?? NaN) / (b ?? NaN)),
        ]);
      if (s.kind === "conn") {
        row("connect rate", now.connectRate, base.connectRate);
        row("RSS KiB/connection", now.rssPerConnKiB, base.rssPerConnKiB);
      } else {
        if (s.kind !== "latency") row("msgs/s", now.msgsPerSec, base.msgsPerSec);
        row("p99 ms", now.p99Ms, base.p99Ms);
      }
    }
    lines.push(
      "",
      "== This checkout against the baseline (MQTTWK_BENCH_BASELINE), medians of rounds",
      table(["scenario", "metric", "baseline", "this checkout", "this/baseline"], rows, 2),
    );
  }

  const durable = scenarios.filter((s) =>
    s.qos === 1 && s.kind !== "conn" && s.kind !== "latency" && s.kind !== "cluster"
  )
    .map((s) => {
      const mem = ms.find((m) => m.scenario === s.name && m.broker === "mqttwk");
      const dur = ms.find((m) => m.scenario === s.name && m.broker === "mqttwk-durable");
      return { s, mem, dur, ratio: mem && dur ? dur.msgsPerSec / mem.msgsPerSec : NaN };
    });
  if (durable.length && brokers.includes("mqttwk-durable")) {
    lines.push(
      "",
      "== MqttWk QoS 1 throughput, durable (sqlite) vs memory persistence (target >= 0.70)",
      table(
        ["scenario", "memory msgs/s", "durable msgs/s", "durable/memory", ""],
        durable.map((d) => [
          d.s.name,
          fmtNum(d.mem?.msgsPerSec ?? NaN),
          fmtNum(d.dur?.msgsPerSec ?? NaN),
          fmtSig(d.ratio),
          Number.isFinite(d.ratio) ? (d.ratio >= 0.7 ? "ok" : "BELOW TARGET") : "",
        ]),
      ),
    );
  }
  lines.push(...mqtt5Report(ms, scenarios));
  const busiest = Math.max(0, ...ms.map((m) => m.otherCpuPct).filter(Number.isFinite));
  if (busiest > 25) {
    lines.push(
      "",
      `WARNING: other processes used up to ${fmtNum(busiest)}% CPU (100 = one core) during ` +
        'measurement windows (column "other CPU%"); on this 2-core machine that skews the ' +
        "numbers. Rerun on a quiet machine for figures worth quoting.",
    );
  }
  console.log(lines.join("\n"));
  return rs;
}
