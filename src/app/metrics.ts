/** What /health says, as an object (the HTTP port itself is served by ./http.ts). */
import type { Broker } from "../broker/broker.ts";
import type { HealthSource } from "../metrics/http.ts";

export type { HealthSource } from "../metrics/http.ts";

/** What /health reports, as an object. */
export interface HealthView {
  status: "ok" | "degraded";
  /** Names of the sources (e.g. "cluster", "kafka") that report themselves unhealthy. */
  degraded: string[];
  connections: number;
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
