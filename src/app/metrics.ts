/** The read-only /metrics and /health endpoint, when `http-enabled` is on. */
import type { Broker } from "../broker/broker.ts";
import type { Config } from "../config/load.ts";
import type { Logger } from "../log.ts";
import { type HealthSource, listenMetrics } from "../metrics/http.ts";
import type { Front, Guard } from "../transport/listening.ts";

export type { HealthSource } from "../metrics/http.ts";

/** What /health reports, as an object. */
export interface HealthView {
  status: "ok" | "degraded";
  /** Names of the sources (e.g. "cluster", "kafka") that report themselves unhealthy. */
  degraded: string[];
  connections: number;
}

/**
 * Serves /metrics and /health (its sockets counted by `guard` like the MQTT listeners'), or
 * resolves undefined when the endpoint is off.
 */
export async function serveMetrics(
  config: Config,
  broker: Broker,
  sources: HealthSource[],
  log: Logger,
  guard?: Guard,
): Promise<Front | undefined> {
  if (!config.httpEnabled) return undefined;
  return await listenMetrics(
    {
      hostname: config.httpHost,
      port: config.httpPort,
      requestTimeout: config.connectTimeout,
      guard,
    },
    broker,
    sources,
    log,
  );
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
