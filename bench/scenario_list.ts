/**
 * The benchmark's scenarios: what each one is (kind, QoS, payload, clients, protocol version),
 * scaled to a 2-core machine from EMQ's Open MQTT Benchmark Suite, and which brokers run it.
 * How a scenario is run: scenarios.ts.
 */

import type { BrokerName } from "./brokers.ts";

export type ScenarioKind =
  | "fanin"
  | "fanout"
  | "p2p"
  | "latency"
  | "conn"
  | "conn-cluster"
  | "cluster";

/** The traffic shape of a "cluster" scenario (run by bench/cluster_traffic.ts). */
export type ClusterShape = "fanin" | "fanout" | "p2p" | "latency";

export interface Scenario {
  name: string;
  kind: ScenarioKind;
  qos: number;
  payload: number;
  publishers: number;
  subscribers: number;
  /** Offered load in msgs/s for kind "latency". */
  rate?: number;
  /** Idle connections for kind "conn" (and in total for "conn-cluster"). */
  connections?: number;
  description: string;
  /** Not part of the default suite: runs only when named exactly with --scenarios. */
  optIn?: boolean;
  /** 5 for MQTT 5.0 clients; absent for 3.1.1. */
  protocol?: 5;
  /**
   * 5.0 only: topic aliases both ways. Each publisher sets an alias on its first PUBLISH and then
   * sends the alias alone; subscribers allow SUBSCRIBER_TOPIC_ALIAS_MAXIMUM aliases towards them.
   */
  topicAlias?: boolean;
  /** The 3.1.1 scenario of the same shape, for the "MQTT 5.0 against 3.1.1" table. */
  pairOf?: string;
  /** Kind "cluster": the traffic shape run on one node and across two. */
  shape?: ClusterShape;
  /** First topic level of the traffic scenarios (default "bench"). */
  topicRoot?: string;
}

/**
 * Cross-node scenarios (issue 15): publishers on node A, subscribers on node B of a 2-node cluster
 * sharing one redis-server, against the same scenario with everyone on node A, 64 B payloads.
 */
export function clusterScenarios(): Scenario[] {
  const out: Scenario[] = [];
  const shapes: [ClusterShape, string, number, number, string][] = [
    ["fanin", "fanin", 10, 1, "fan-in, 10 publishers -> 1 subscriber"],
    ["p2p", "p2p", 50, 50, "50 publisher/subscriber pairs"],
    ["fanout", "fanout", 1, 50, "fan-out, 1 publisher -> 50 subscribers"],
  ];
  for (const qos of [0, 1]) {
    for (const [shape, name, publishers, subscribers, what] of shapes) {
      out.push({
        name: `cluster-${name}-q${qos}`,
        kind: "cluster",
        shape,
        qos,
        payload: 64,
        publishers,
        subscribers,
        description: `cross-node ${what}, QoS ${qos}, 64 B, vs the same on one node`,
      });
    }
  }
  out.push({
    name: "cluster-lat-q1",
    kind: "cluster",
    shape: "latency",
    qos: 1,
    payload: 64,
    publishers: 50,
    subscribers: 50,
    rate: 5000,
    description: "cross-node fixed load 5,000 msg/s, 50 pairs, QoS 1, 64 B, vs one node",
  });
  return out;
}

/** Topic Alias Maximum the subscribers of the alias scenarios send in CONNECT. */
export const SUBSCRIBER_TOPIC_ALIAS_MAXIMUM = 10;

/**
 * MQTT 5.0 twins of the 16-byte throughput scenarios (same clients, topics and QoS; only the
 * protocol level differs), and the topic-alias scenarios.
 */
export function mqtt5Scenarios(base: Scenario[]): Scenario[] {
  const out: Scenario[] = [];
  for (const s of base) {
    if (s.payload !== 16 || !["fanin", "fanout", "p2p"].includes(s.kind)) continue;
    out.push({
      ...s,
      name: `${s.name}-v5`,
      description: `${s.description}, MQTT 5.0`,
      protocol: 5,
      pairOf: s.name,
    });
  }
  for (const name of ["p2p-q0-16", "fanout-q0-16"]) {
    const s = base.find((x) => x.name === name);
    if (!s) continue;
    out.push({
      ...s,
      name: `${s.name}-v5-alias`,
      description: `${s.description}, MQTT 5.0, topic aliases both ways`,
      protocol: 5,
      topicAlias: true,
      pairOf: s.name,
    });
  }
  return out;
}

export interface ScenarioOptions {
  connections: number;
  smoke: boolean;
  /** Total idle connections for conn-cluster (default 50,000). */
  clusterConnections?: number;
}

export function buildScenarios(o: ScenarioOptions): Scenario[] {
  if (o.smoke) {
    return [
      {
        name: "p2p-q1-16",
        kind: "p2p",
        qos: 1,
        payload: 16,
        publishers: 2,
        subscribers: 2,
        description: "point-to-point, 2 pairs, QoS 1, 16 B (smoke)",
      },
      {
        name: "p2p-q1-16-v5",
        kind: "p2p",
        qos: 1,
        payload: 16,
        publishers: 2,
        subscribers: 2,
        description: "point-to-point, 2 pairs, QoS 1, 16 B, MQTT 5.0 (smoke)",
        protocol: 5,
        pairOf: "p2p-q1-16",
      },
      {
        name: "p2p-q0-16-v5-alias",
        kind: "p2p",
        qos: 0,
        payload: 16,
        publishers: 2,
        subscribers: 2,
        description: "point-to-point, 2 pairs, QoS 0, 16 B, MQTT 5.0, topic aliases (smoke)",
        protocol: 5,
        topicAlias: true,
        pairOf: "p2p-q0-16",
      },
      {
        name: "conn",
        kind: "conn",
        qos: 0,
        payload: 0,
        publishers: 0,
        subscribers: 0,
        connections: o.connections,
        description: `connection capacity, ${o.connections} idle connections (smoke)`,
      },
    ];
  }
  const out: Scenario[] = [];
  const sizes: [string, number][] = [["16", 16], ["1k", 1024]];
  for (const qos of [0, 1]) {
    for (const [sn, size] of sizes) {
      const tail = `QoS ${qos}, ${size === 16 ? "16 B" : "1 KiB"}`;
      out.push({
        name: `fanin-q${qos}-${sn}`,
        kind: "fanin",
        qos,
        payload: size,
        publishers: 100,
        subscribers: 1,
        description: `fan-in, 100 publishers -> 1 subscriber on bench/fanin/+, ${tail}`,
      });
      out.push({
        name: `fanout-q${qos}-${sn}`,
        kind: "fanout",
        qos,
        payload: size,
        publishers: 1,
        subscribers: 50,
        description: `fan-out, 1 publisher -> 50 subscribers, ${tail}`,
      });
      out.push({
        name: `p2p-q${qos}-${sn}`,
        kind: "p2p",
        qos,
        payload: size,
        publishers: 50,
        subscribers: 50,
        description: `point-to-point, 50 publisher/subscriber pairs, ${tail}`,
      });
    }
  }
  // Each 5.0 scenario right after its 3.1.1 twin, so the pair shares the machine's state.
  const v5 = mqtt5Scenarios(out);
  out.splice(0, out.length, ...out.flatMap((s) => [s, ...v5.filter((x) => x.pairOf === s.name)]));
  for (const qos of [0, 1]) {
    out.push({
      name: `lat-q${qos}-16`,
      kind: "latency",
      qos,
      payload: 16,
      publishers: 20,
      subscribers: 20,
      rate: 2000,
      description: `fixed offered load 2,000 msg/s, 20 point-to-point pairs, QoS ${qos}, 16 B`,
    });
  }
  out.push({
    name: "conn",
    kind: "conn",
    qos: 0,
    payload: 0,
    publishers: 0,
    subscribers: 0,
    connections: o.connections,
    description: `connection capacity, ${o.connections} idle connections (keepalive 0)`,
  });
  out.push(...clusterScenarios());
  const cc = o.clusterConnections ?? 50_000;
  out.push({
    name: "conn-cluster",
    kind: "conn-cluster",
    qos: 0,
    payload: 0,
    publishers: 0,
    subscribers: 0,
    connections: cc,
    description: `cluster connection capacity, ${cc} idle connections over 3 MqttWk nodes`,
    optIn: true,
  });
  return out;
}

/** mqttwk-durable exists for the QoS 1 durable-vs-memory ratio: it only runs QoS 1 traffic. */
export function brokerRuns(b: BrokerName, s: Scenario): boolean {
  // These start their own cluster.
  if (s.kind === "conn-cluster") return b === "mqttwk";
  if (s.kind === "cluster") return b === "mqttwk" || b === "mqttwk-baseline";
  // Aedes 1.2.0 refuses protocol level 5 (CONNACK 0x01), so it has no 5.0 runs.
  if (s.protocol === 5 && b === "aedes") return false;
  if (b !== "mqttwk-durable") return true;
  return s.kind !== "conn" && s.qos === 1;
}
