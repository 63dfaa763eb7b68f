/**
 * The report's "MQTT 5.0 against 3.1.1" table: each 5.0 scenario beside its 3.1.1 twin from the
 * same run (same clients, topics, QoS and payload), for MqttWk and for Mosquitto, so the cost of
 * speaking 5.0 is read off one machine and one moment's noise.
 */

import type { Median } from "./report.ts";
import type { Scenario } from "./scenario_list.ts";
import { fmtNum, fmtSig, table } from "./stats.ts";

/** A 5.0 run within this fraction of its 3.1.1 twin counts as the same speed. */
export const MQTT5_TARGET = 0.9;

/** The table's lines (empty when no 5.0 scenario ran). */
export function mqtt5Report(ms: Median[], scenarios: Scenario[]): string[] {
  const get = (name: string | undefined, b: string) =>
    ms.find((m) => m.scenario === name && m.broker === b);
  const rows: string[][] = [];
  for (const s of scenarios) {
    if (s.protocol !== 5) continue;
    const w5 = get(s.name, "mqttwk");
    const w3 = get(s.pairOf, "mqttwk");
    const m5 = get(s.name, "mosquitto");
    const m3 = get(s.pairOf, "mosquitto");
    const ratio = (a?: number, b?: number) => (a ?? NaN) / (b ?? NaN);
    const w = ratio(w5?.msgsPerSec, w3?.msgsPerSec);
    // Broker CPU per delivery: less disturbed by a busy machine than msgs/s (a starved broker
    // delivers less but spends about the same CPU on each message).
    const cpu = (m?: Median) => m?.cpuUsPerMsg ?? NaN;
    const pct = (m?: Median) => m?.aliasedPct === undefined ? "-" : fmtNum(m.aliasedPct);
    rows.push([
      s.name,
      s.pairOf ?? "-",
      fmtNum(w3?.msgsPerSec ?? NaN),
      fmtNum(w5?.msgsPerSec ?? NaN),
      fmtSig(w),
      fmtSig(ratio(w5?.p99Ms, w3?.p99Ms)),
      fmtSig(cpu(w5) / cpu(w3)),
      fmtSig(ratio(m5?.msgsPerSec, m3?.msgsPerSec)),
      s.topicAlias ? `${pct(w5)} / ${pct(m5)}` : "",
      Number.isFinite(w) ? (w >= MQTT5_TARGET ? "ok" : "SLOWER") : "",
    ]);
  }
  if (rows.length === 0) return [];
  return [
    "",
    "== MQTT 5.0 against 3.1.1 (same run; medians of rounds; msgs/s: higher is better, " +
    `p99: lower is better; target: MqttWk 5.0/3.1.1 msgs/s >= ${MQTT5_TARGET})`,
    table(
      [
        "5.0 scenario",
        "3.1.1 twin",
        "MqttWk 3.1.1 msgs/s",
        "MqttWk 5.0 msgs/s",
        "MqttWk 5.0/3.1.1",
        "MqttWk p99 5.0/3.1.1",
        "MqttWk CPU/msg 5.0/3.1.1",
        "Mosquitto 5.0/3.1.1",
        "aliased % MqttWk / Mosquitto",
        "",
      ],
      rows,
      2,
    ),
    "CPU/msg: broker CPU per delivery (lower is better); steadier than msgs/s on a busy machine.",
    "aliased %: deliveries that reached a subscriber with a topic alias alone (outbound aliases).",
    "Publishers of the -alias scenarios send the alias alone after their first PUBLISH; Mosquitto",
    "2.0 accepts that but sends no topic aliases to clients itself, hence 0 in its column.",
  ];
}
