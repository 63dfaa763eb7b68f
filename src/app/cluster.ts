/** Cluster wiring: the shared Redis store, the link between nodes, and its health. */
import type { Config } from "../config/load.ts";
import type { Logger } from "../log.ts";
import type { Store } from "../broker/ports/store.ts";
import type { ClusterLink } from "../broker/ports/cluster.ts";
import type { HealthSource } from "../metrics/http.ts";

/** The cluster's store (sessions, queues and retained messages live in Redis) and its link. */
export async function createCluster(
  config: Config,
  log: Logger,
): Promise<{ store: Store; cluster: ClusterLink }> {
  // Loaded only when used: ioredis and kafkajs would otherwise add ~15 MB to every broker.
  const { createRedisCluster } = await import("../cluster/mod.ts");
  return createRedisCluster(config, log);
}

/** The cluster as seen by /health: degraded while the link reports itself unhealthy. */
export function clusterHealth(link: ClusterLink): HealthSource {
  return { name: "cluster", healthy: () => link.healthy !== false, metrics: () => ({}) };
}

/** The cluster-wide admin requests of the HTTP API, over the cluster's Redis. */
export async function clusterAdmin(
  config: Config,
  nodeId: string,
  local: (req: never) => unknown,
  log: Logger,
): Promise<
  { gather: (req: unknown) => Promise<{ node: string; answer: unknown }[]>; stop(): Promise<void> }
> {
  const { AdminRpc, redisOptionsOf } = await import("../cluster/mod.ts");
  const rpc = new AdminRpc(
    redisOptionsOf(config),
    nodeId,
    (req) => local(req as never),
    log,
    Math.max(1000, Math.round(config.clusterNodeTimeout * 1000)),
  );
  await rpc.start();
  return { gather: (req) => rpc.gather(req), stop: () => rpc.stop() };
}
