/**
 * Builds the Redis store and the cluster link from the configuration (`cluster-on`): main.ts
 * passes `store` as the broker's store and `cluster` as its ClusterLink. The one place in
 * src/cluster/ that knows the concrete store: the link itself only needs a ClusterStore.
 */
import type { Config } from "../config/load.ts";
import type { Logger } from "../log.ts";
import type { RedisConnOptions } from "../redis/conn.ts";
import { RedisStore } from "../store/redis.ts";
import { RedisClusterLink } from "./redis_link.ts";

export { RedisClusterLink } from "./redis_link.ts";
export { AdminRpc } from "./admin_rpc.ts";
export type { ClusterStore, RedisClusterLinkOptions } from "./redis_link.ts";

/** The store and the link of one clustered node. */
export interface RedisCluster {
  store: RedisStore;
  cluster: RedisClusterLink;
}

/** Where the cluster's Redis is, from the `redis.*` settings. */
export function redisOptionsOf(config: Config): RedisConnOptions {
  return {
    mode: config.redisMode,
    host: config.redisHost,
    port: config.redisPort,
    password: config.redisPassword,
    database: config.redisDatabase,
    nodes: config.redisNodes,
    keyPrefix: config.redisKeyPrefix,
  };
}

/** Creates (without connecting) the Redis store and the cluster link `config` describes. */
export function createRedisCluster(config: Config, log: Logger): RedisCluster {
  const store = new RedisStore({
    ...redisOptionsOf(config),
    requirePersistence: config.redisRequirePersistence,
    logger: log,
  });
  const cluster = new RedisClusterLink(store, {
    nodeTimeoutMs: Math.round(config.clusterNodeTimeout * 1000),
    streamMaxLen: config.clusterStreamMaxLen,
  });
  return { store, cluster };
}
