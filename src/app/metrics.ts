/** The read-only /metrics and /health endpoint, when `http-enabled` is on. */
import type { Broker } from "../broker/broker.ts";
import type { Config } from "../config/load.ts";
import type { Logger } from "../log.ts";
import { type HealthSource, listenMetrics } from "../metrics/http.ts";
import type { Listening } from "../transport/tcp.ts";

export type { HealthSource } from "../metrics/http.ts";

/** What /health reports, as an object. */
export interface HealthView {
  status: "ok" | "degraded";
  /** Names of the sources (e.g. "cluster", "kafka") that report themselves unhealthy. */
  degraded: string[];
  connections: number;
}

/** Serves /metrics and /health, or returns undefined when the endpoint is off. */
export function serveMetrics(
  config: Config,
  broker: Broker,
  sources: HealthSource[],
  log: Logger,
): Listening | undefined {
  if (!config.httpEnabled) return undefined;
  return listenMetrics({ hostname: config.httpHost, port: config.httpPort }, broker, sources, log);
}

/** The same verdict /health gives, without going through HTTP. */
export function healthView(broker: Broker, sources: HealthSource[]): HealthView {
  const degraded = sources.filter((s) => !s.healthy()).map((s) => s.name);
  return {
    status: degraded.length ? "degraded" : "ok",
    degraded,
    connections: broker.stats.connections,
  };
}
