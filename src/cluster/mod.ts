/**
 * Builds the Redis store and the cluster link from the configuration (`cluster-on`): main.ts
 * passes `store` as the broker's store and `cluster` as its ClusterLink.
 */
import type { Config } from "../config/load.ts";
import type { Logger } from "../log.ts";
import { RedisStore } from "../store/redis.ts";
import { RedisClusterLink } from "./redis_link.ts";

export { RedisClusterLink } from "./redis_link.ts";
export type { RedisClusterLinkOptions } from "./redis_link.ts";

export interface RedisCluster {
  store: RedisStore;
  cluster: RedisClusterLink;
}

export function createRedisCluster(config: Config, log: Logger): RedisCluster {
  const store = new RedisStore({
    mode: config.redisMode,
    host: config.redisHost,
    port: config.redisPort,
    password: config.redisPassword,
    database: config.redisDatabase,
    nodes: config.redisNodes,
    keyPrefix: config.redisKeyPrefix,
    logger: log,
  });
  const cluster = new RedisClusterLink(store, {
    nodeTimeoutMs: Math.round(config.clusterNodeTimeout * 1000),
    streamMaxLen: config.clusterStreamMaxLen,
  });
  return { store, cluster };
}
