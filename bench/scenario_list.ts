/**
 * The benchmark's scenarios: what each one is (kind, QoS, payload, clients, protocol version),
 * scaled to a 2-core machine from EMQ's Open MQTT Benchmark Suite, and which brokers run it.
 * How a scenario is run: scenarios.ts.
 */

import type { BrokerName } from "./brokers.ts";
import type { Transport } from "./wire_transport.ts";

export type ScenarioKind =
  | "fanin"
  | "fanout"
  | "p2p"
  | "topics"
  | "latency"
  | "conn"
  | "conn-cluster"
  | "handshake"
  | "retained-storm"
  | "drain"
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
  /** Transport the clients use (default tcp). */
  transport?: Transport;
  /** PUBLISHes coalesced per write, if fewer than MAX_BATCH (large payloads). */
  batch?: number;
  /** Closed-loop window in deliveries, if larger than --window (wide fan-out). */
  window?: number;
  /** kind "handshake": TLS version and whether sessions are resumed. */
  tlsVersion?: "TLSv1.2" | "TLSv1.3";
  resume?: boolean;
  /** kind "latency": TLS clients connecting (and closing) during the window. */
  storm?: number;
  /** kind "retained-storm": retained messages stored first; kind "drain": messages queued. */
  messages?: number;
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
  out.push(...moreScenarios(o.connections));
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
  if (
    b === "aedes" && (s.transport !== undefined || s.qos === 2 || s.kind === "handshake" ||
      s.kind === "retained-storm" || s.kind === "drain" || s.kind === "topics" ||
      s.payload > 1024 || s.subscribers > 100)
  ) return false;
  if (s.kind === "drain") return true; // durable vs memory vs Mosquitto
  if (s.transport !== undefined && b === "mqttwk-durable") return false;
  // Aedes 1.2.0 refuses protocol level 5 (CONNACK 0x01), so it has no 5.0 runs.
  if (s.protocol === 5 && b === "aedes") return false;
  if (b !== "mqttwk-durable") return true;
  return s.kind !== "conn" && s.qos === 1;
}

/** A throughput or latency scenario with defaults filled in. */
function traffic(
  s: Partial<Scenario> & Pick<Scenario, "name" | "kind" | "description">,
): Scenario {
  return { qos: 0, payload: 16, publishers: 0, subscribers: 0, ...s };
}

/**
 * The scenarios of issues 15 and 18: fixed-load latency at 5k and 10k msg/s over every transport,
 * throughput over TLS/WS/WSS, QoS 2, 64 KiB payloads, wide fan-out, many topics behind
 * wildcards, a subscribe storm against retained messages, persistent sessions drained after a
 * reconnect, TLS handshake rates and idle connection cost per transport.
 */
export function moreScenarios(connections: number): Scenario[] {
  const out: Scenario[] = [];
  const transports: Transport[] = ["tcp", "tls", "ws", "wss"];
  for (const tr of transports) {
    const suffix = tr === "tcp" ? "" : `-${tr}`;
    for (const rate of [5000, 10000]) {
      for (const qos of [0, 1]) {
        out.push(traffic({
          name: `lat-q${qos}-${rate / 1000}k${suffix}`,
          kind: "latency",
          qos,
          publishers: 50,
          subscribers: 50,
          rate,
          transport: tr === "tcp" ? undefined : tr,
          description: `fixed offered load ${rate} msg/s, 50 pairs, QoS ${qos}, 16 B, over ${tr}`,
        }));
      }
    }
  }
  for (const tr of ["tls", "ws", "wss"] as Transport[]) {
    for (const qos of [0, 1]) {
      out.push(traffic({
        name: `p2p-q${qos}-16-${tr}`,
        kind: "p2p",
        qos,
        publishers: 50,
        subscribers: 50,
        transport: tr,
        description: `point-to-point, 50 pairs, QoS ${qos}, 16 B, over ${tr}`,
      }));
    }
  }
  out.push(traffic({
    name: "p2p-q1-16-mtls",
    kind: "p2p",
    qos: 1,
    publishers: 50,
    subscribers: 50,
    transport: "mtls",
    description: "point-to-point, 50 pairs, QoS 1, 16 B, over mutual TLS (cert CN = username)",
  }));
  out.push(traffic({
    name: "lat-q0-2k-tls-storm",
    kind: "latency",
    publishers: 20,
    subscribers: 20,
    rate: 2000,
    transport: "tls",
    storm: 5000,
    description: "20 TLS pairs at 2,000 msg/s while 5,000 TLS clients connect (handshake storm)",
  }));
  for (const kind of ["p2p", "fanin"] as const) {
    out.push(traffic({
      name: `${kind}-q2-16`,
      kind,
      qos: 2,
      publishers: kind === "p2p" ? 50 : 100,
      subscribers: kind === "p2p" ? 50 : 1,
      description: `${kind === "p2p" ? "point-to-point, 50 pairs" : "fan-in, 100 -> 1"}, QoS 2`,
    }));
  }
  for (const qos of [0, 1]) {
    out.push(traffic({
      name: `p2p-q${qos}-64k`,
      kind: "p2p",
      qos,
      payload: 64 * 1024,
      publishers: 50,
      subscribers: 50,
      batch: 4,
      window: 256,
      description: `point-to-point, 50 pairs, QoS ${qos}, 64 KiB`,
    }));
    out.push(traffic({
      name: `fanout1000-q${qos}-16`,
      kind: "fanout",
      qos,
      publishers: 1,
      subscribers: 1000,
      window: 16_000,
      description: `fan-out, 1 publisher -> 1,000 subscribers, QoS ${qos}, 16 B`,
    }));
    out.push(traffic({
      name: `topics10k-q${qos}-16`,
      kind: "topics",
      qos,
      publishers: 100,
      subscribers: 100,
      batch: 16,
      description: `10,000 topics (100 publishers x 100 topics), 100 wildcard subscribers ` +
        `bench/t/<i>/+, QoS ${qos}`,
    }));
  }
  out.push(traffic({
    name: "retained-storm",
    kind: "retained-storm",
    qos: 1,
    subscribers: 100,
    messages: 100_000,
    description: "100,000 retained messages, then 100 clients subscribe to 1,000 each at once",
  }));
  out.push(traffic({
    name: "drain-q1",
    kind: "drain",
    qos: 1,
    publishers: 1,
    subscribers: 50,
    messages: 20_000,
    description: "QoS 1 to 50 offline persistent sessions (20,000 messages), then reconnect and " +
      "drain",
  }));
  for (const v of ["TLSv1.3", "TLSv1.2"] as const) {
    for (const resume of [false, true]) {
      out.push(traffic({
        name: `tls-hs-${v === "TLSv1.3" ? "13" : "12"}${resume ? "-resume" : ""}`,
        kind: "handshake",
        transport: "tls",
        connections: 500,
        tlsVersion: v,
        resume,
        description: `TLS handshakes per second (${v}${resume ? ", session resumption" : ""}), ` +
          `500 connects + CONNACK, 16 at a time`,
      }));
    }
  }
  out.push({
    name: "conn",
    kind: "conn",
    qos: 0,
    payload: 0,
    publishers: 0,
    subscribers: 0,
    connections,
    description: `connection capacity, ${connections} idle connections (keepalive 0)`,
  });
  for (const tr of ["tls", "ws", "wss"] as Transport[]) {
    const n = Math.min(connections, 5000);
    out.push(traffic({
      name: `conn-${tr}`,
      kind: "conn",
      transport: tr,
      connections: n,
      description: `idle connection cost over ${tr}, ${n} idle connections`,
    }));
  }
  return out;
}
