/**
 * `/metrics` in the Prometheus text format and `/health` as JSON (200 when healthy, 503 when
 * degraded, e.g. the cluster has lost Redis or Kafka is down): counters only, no login. The HTTP
 * server of src/http/ serves them on `server.port` next to the API.
 */
import type { Broker } from "../broker/broker.ts";
import type { RequestHead } from "../transport/ws_handshake.ts";

export interface HealthSource {
  /** Short name for /health, e.g. "cluster" or "kafka". */
  name: string;
  healthy(): boolean;
  /** Why it is degraded (shown by /health), or null. */
  reason?(): string | null;
  /** Extra gauges and counters, metric name (without the mqttwk_ prefix) to value. */
  metrics(): Record<string, number>;
}

export function metricsText(broker: Broker, sources: HealthSource[]): string {
  const s = broker.stats;
  const lines: string[] = [];
  const put = (name: string, type: "gauge" | "counter", value: number, help: string) => {
    lines.push(`# HELP mqttwk_${name} ${help}`, `# TYPE mqttwk_${name} ${type}`);
    lines.push(`mqttwk_${name} ${Number.isFinite(value) ? value : 0}`);
  };
  put("connections", "gauge", s.connections, "Open client connections.");
  put("sessions", "gauge", s.sessions, "Sessions held by this node (connected or offline).");
  put("subscriptions", "gauge", s.subscriptions, "Subscriptions held by this node.");
  put("retained_messages", "gauge", s.retained, "Retained messages.");
  put("messages_received_total", "counter", s.messagesIn, "PUBLISH packets received.");
  put("messages_sent_total", "counter", s.messagesOut, "PUBLISH packets sent.");
  put(
    "messages_dropped_total",
    "counter",
    s.dropped,
    "Messages dropped (full queue, slow client).",
  );
  put(
    "messages_expired_total",
    "counter",
    s.expired,
    "Message copies discarded because their MQTT 5 Message Expiry Interval passed.",
  );
  for (const src of sources) {
    put(`${src.name}_healthy`, "gauge", src.healthy() ? 1 : 0, `1 when ${src.name} is healthy.`);
    for (const [k, v] of Object.entries(src.metrics())) {
      put(`${src.name}_${k}`, k.endsWith("_total") ? "counter" : "gauge", v, `${src.name} ${k}.`);
    }
  }
  return lines.join("\n") + "\n";
}

/** What the endpoint answers to one request head (the HTTP API serves these paths through it). */
export function answer(
  head: RequestHead,
  broker: Broker,
  sources: HealthSource[],
): { status: number; type: string; body: string } {
  const path = head.target.split("?")[0];
  if (head.method !== "GET") return { status: 405, type: TEXT, body: "read-only\n" };
  if (path === "/metrics") {
    return { status: 200, type: "text/plain; version=0.0.4", body: metricsText(broker, sources) };
  }
  if (path === "/health") {
    const degraded = sources.filter((s) => !s.healthy()).map((s) => s.name);
    const reasons: Record<string, string> = {};
    for (const s of sources) {
      const r = s.reason?.();
      if (r) reasons[s.name] = r;
    }
    const body = JSON.stringify({
      status: degraded.length ? "degraded" : "ok",
      degraded,
      reasons,
      connections: broker.stats.connections,
    });
    return { status: degraded.length ? 503 : 200, type: "application/json", body };
  }
  return { status: 404, type: TEXT, body: "try /metrics or /health\n" };
}

const TEXT = "text/plain; charset=utf-8";
