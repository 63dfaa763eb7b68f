/**
 * Read-only management endpoint: `/metrics` in the Prometheus text format and `/health` as JSON
 * (200 when healthy, 503 when degraded, e.g. the cluster has lost Redis or Kafka is down).
 * It exposes counters only, no control: the original's unauthenticated HTTP API that could
 * publish is deliberately not re-created.
 */
import type { Broker } from "../broker/broker.ts";
import type { Logger } from "../log.ts";
import type { Listening } from "../transport/tcp.ts";

export interface HealthSource {
  /** Short name for /health, e.g. "cluster" or "kafka". */
  name: string;
  healthy(): boolean;
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
  for (const src of sources) {
    put(`${src.name}_healthy`, "gauge", src.healthy() ? 1 : 0, `1 when ${src.name} is healthy.`);
    for (const [k, v] of Object.entries(src.metrics())) {
      put(`${src.name}_${k}`, k.endsWith("_total") ? "counter" : "gauge", v, `${src.name} ${k}.`);
    }
  }
  return lines.join("\n") + "\n";
}

export function listenMetrics(
  opts: { hostname: string; port: number },
  broker: Broker,
  sources: HealthSource[],
  log: Logger,
): Listening {
  const server = Deno.serve(
    { hostname: opts.hostname, port: opts.port, onListen: () => {} },
    (req) => {
      const path = new URL(req.url).pathname;
      if (req.method !== "GET") return new Response("read-only\n", { status: 405 });
      if (path === "/metrics") {
        return new Response(metricsText(broker, sources), {
          headers: { "content-type": "text/plain; version=0.0.4" },
        });
      }
      if (path === "/health") {
        const degraded = sources.filter((s) => !s.healthy()).map((s) => s.name);
        return Response.json(
          {
            status: degraded.length ? "degraded" : "ok",
            degraded,
            connections: broker.stats.connections,
          },
          { status: degraded.length ? 503 : 200 },
        );
      }
      return new Response("try /metrics or /health\n", { status: 404 });
    },
  );
  const addr = server.addr as Deno.NetAddr;
  log.info(`listening http ${addr.hostname}:${addr.port} (/metrics, /health)`);
  return {
    address: `${addr.hostname}:${addr.port}`,
    port: addr.port,
    close() {
      server.shutdown().catch(() => {});
    },
  };
}
