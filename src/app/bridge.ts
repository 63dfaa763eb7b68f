/** Kafka bridge wiring: created only when enabled, and reported to /health and /metrics. */
import type { Config } from "../config/load.ts";
import type { Logger } from "../log.ts";
import type { KafkaBridge } from "../bridge/kafka/mod.ts";
import type { HealthSource } from "../metrics/http.ts";

/** The Kafka bridge, or null when `kafka-enabled` is off. */
export async function createBridge(config: Config, log: Logger): Promise<KafkaBridge | null> {
  if (!config.kafkaEnabled) return null;
  // Loaded only when used: kafkajs would otherwise weigh on every broker.
  const { createKafkaBridge } = await import("../bridge/kafka/mod.ts");
  return createKafkaBridge(config, log);
}

/** The bridge as seen by /health (degraded while disconnected) and /metrics (its counters). */
export function bridgeHealth(bridge: KafkaBridge): HealthSource {
  return {
    name: "kafka",
    healthy: () => bridge.stats().connected,
    metrics: () => {
      const st = bridge.stats();
      return {
        produced_total: st.produced,
        dropped_total: st.dropped,
        rejected_total: st.rejected,
        buffered: st.buffered,
        buffered_bytes: st.bufferedBytes,
      };
    },
  };
}
