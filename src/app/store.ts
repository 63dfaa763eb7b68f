/** Store selection: memory, SQLite in the data directory, or the cluster's Redis. */
import type { Config } from "../config/load.ts";
import type { Logger } from "../log.ts";
import type { Store } from "../broker/ports/store.ts";
import type { ClusterLink } from "../broker/ports/cluster.ts";
import { MemoryStore } from "../store/memory.ts";
import { SqliteStore } from "../store/sqlite.ts";
import { createCluster } from "./cluster.ts";

/** The store the broker will use, and the cluster link when the store is shared. */
export interface StoreChoice {
  store: Store;
  cluster?: ClusterLink;
}

/** Builds (without opening) the store the configuration asks for; `cluster-on` wins. */
export async function chooseStore(config: Config, log: Logger): Promise<StoreChoice> {
  if (config.clusterOn) return await createCluster(config, log);
  if (config.persistence === "sqlite") {
    return {
      store: new SqliteStore({
        dir: config.dataDir,
        durability: config.durability,
        commitIntervalMs: config.commitIntervalMs,
        integrityCheck: config.storeIntegrityCheck,
        logger: log,
      }),
    };
  }
  return { store: new MemoryStore() };
}

/** How the start-up line describes where state is kept. */
export function storageSummary(config: Config): string {
  if (config.clusterOn) {
    const where = config.redisMode === "cluster"
      ? `Redis Cluster ${config.redisNodes}`
      : `Redis ${config.redisHost}:${config.redisPort}`;
    return `cluster over ${where}`;
  }
  if (config.persistence === "sqlite") {
    return `persistence sqlite in ${config.dataDir}, durability ${config.durability}`;
  }
  return "persistence memory";
}
