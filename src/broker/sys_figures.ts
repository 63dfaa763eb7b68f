/**
 * The figures behind `$SYS`: one node's raw values at one moment, the cluster's totals over
 * several nodes' values, and the topics and payloads they become (Mosquitto 2.0's names and
 * formats, so its tools and dashboards read them unchanged).
 */
import type { Core } from "./core.ts";
import type { NodeSysStats } from "./ports/cluster.ts";
import type { BrokerStats } from "./stats.ts";
import { LoadAverages } from "./sys_load.ts";

/** Raw figures by name; what nodes share and what the topics are rendered from. */
export type SysValues = Record<string, number>;

/** The counters followed by `$SYS/broker/load/<name>/...`, as Mosquitto names them. */
const LOAD_SERIES: readonly (readonly [string, (s: BrokerStats) => number])[] = [
  ["messages/received", (s) => s.packetsIn],
  ["messages/sent", (s) => s.controlOut + s.messagesOut],
  ["publish/dropped", (s) => s.dropped],
  ["publish/received", (s) => s.messagesIn],
  ["publish/sent", (s) => s.messagesOut],
  ["bytes/received", (s) => s.bytesIn],
  ["bytes/sent", (s) => s.bytesOut],
  ["sockets", (s) => s.socketsOpened],
  ["connections", (s) => s.connectsReceived],
];

/** Figures that are the same cluster-wide (the retained set is replicated): maxed, not summed. */
const SHARED = new Set(["uptime", "retained", "retainedBytes"]);

/** A node's load averages, fed once per `$SYS` interval. */
export function newLoad(): LoadAverages {
  return new LoadAverages(LOAD_SERIES.map(([name]) => name));
}

/**
 * This node's figures now. Walks the clients and sessions once (a few milliseconds for 100,000
 * sessions, once per interval) rather than keeping more counters on the hot path.
 */
export function nodeValues(core: Core, uptimeS: number, load: LoadAverages, now: number) {
  const s = core.stats;
  load.update(LOAD_SERIES.map(([, f]) => f(s)), now);
  let connected = 0;
  // forEach: no iteration result object per entry (see maintenance.ts).
  core.clients.forEach((c) => {
    if (c.state === "connected") connected++;
  });
  let disconnected = 0, queued = 0, queuedBytes = 0, inflight = 0;
  core.sessions.map.forEach((session) => {
    if (session.client === null) disconnected++;
    queued += session.queueLength;
    queuedBytes += session.queuedBytes;
    inflight += session.inflight.size;
  });
  const v: SysValues = {
    uptime: uptimeS,
    connected,
    disconnected,
    maximum: Math.max(s.connectionsMax, connected),
    expired: s.sessionsExpired,
    subscriptions: s.subscriptions,
    inflight,
    retained: core.retained.size,
    retainedBytes: core.retained.bytes,
    queued,
    queuedBytes,
    packetsIn: s.packetsIn,
    packetsOut: s.controlOut + s.messagesOut,
    publishIn: s.messagesIn,
    publishOut: s.messagesOut,
    dropped: s.dropped,
    bytesIn: s.bytesIn,
    bytesOut: s.bytesOut,
  };
  load.into(v);
  return v;
}

/**
 * The cluster's figures from every live node's: summed, except what every node holds a copy of
 * (the retained set) and the uptime (the oldest node's), which are maxed.
 */
export function clusterValues(nodes: readonly NodeSysStats[]): SysValues {
  const total: SysValues = {};
  for (const n of nodes) {
    for (const [k, x] of Object.entries(n.values)) {
      if (typeof x !== "number" || !Number.isFinite(x)) continue;
      const had = total[k];
      total[k] = had === undefined ? x : SHARED.has(k) ? Math.max(had, x) : had + x;
    }
  }
  return total;
}

const int = (x: number | undefined) => String(Math.max(0, Math.round(x ?? 0)));

/**
 * The `$SYS` topics under a prefix (`$SYS/broker/` or `$SYS/nodes/<id>/`) as suffix → payload,
 * in Mosquitto's formats: integers, "N seconds", loads with two decimals. The deprecated
 * aliases Mosquitto 2.0 still publishes (clients/active, clients/inactive, messages/stored)
 * are kept, so older dashboards work.
 */
export function sysTopics(v: SysValues, version: string): [string, string][] {
  const connected = int(v.connected);
  const disconnected = int(v.disconnected);
  const stored = int((v.retained ?? 0) + (v.queued ?? 0));
  const out: [string, string][] = [
    ["version", version],
    ["uptime", `${int(v.uptime)} seconds`],
    ["clients/total", int((v.connected ?? 0) + (v.disconnected ?? 0))],
    ["clients/connected", connected],
    ["clients/active", connected],
    ["clients/disconnected", disconnected],
    ["clients/inactive", disconnected],
    ["clients/maximum", int(v.maximum)],
    ["clients/expired", int(v.expired)],
    ["messages/received", int(v.packetsIn)],
    ["messages/sent", int(v.packetsOut)],
    ["messages/inflight", int(v.inflight)],
    ["messages/stored", stored],
    ["store/messages/count", stored],
    ["store/messages/bytes", int((v.retainedBytes ?? 0) + (v.queuedBytes ?? 0))],
    ["subscriptions/count", int(v.subscriptions)],
    ["retained messages/count", int(v.retained)],
    ["publish/messages/received", int(v.publishIn)],
    ["publish/messages/sent", int(v.publishOut)],
    ["publish/messages/dropped", int(v.dropped)],
    ["bytes/received", int(v.bytesIn)],
    ["bytes/sent", int(v.bytesOut)],
  ];
  for (const [k, x] of Object.entries(v)) {
    if (k.startsWith("load/")) out.push([k, x.toFixed(2)]);
  }
  if (v.heap !== undefined) {
    out.push(["heap/current", int(v.heap)], ["heap/maximum", int(v.heapMax)]);
  }
  return out;
}

/** A node id as one topic level: `/`, `+`, `#` and NUL would change or break the topic. */
export function nodeLevel(nodeId: string): string {
  // deno-lint-ignore no-control-regex -- NUL is exactly what must not reach a topic
  return nodeId.replace(/[/+#\u0000]/g, "_") || "_";
}
