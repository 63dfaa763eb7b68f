/**
 * A cluster node as a subprocess for the e2e tests, wired exactly as main.ts does with
 * `cluster-on` (config, RedisStore + RedisClusterLink, listeners, SIGTERM). Used until main.ts
 * has the wiring; tests/cluster/nodes.ts prefers main.ts once it has.
 */
import { loadConfig } from "../../src/config/load.ts";
import { Broker } from "../../src/broker/broker.ts";
import { defaultBrokerOptions } from "../../src/broker/options.ts";
import { createLogger } from "../../src/log.ts";
import { EXPIRY_NEVER } from "../../src/store/store.ts";
import { startListeners } from "../../src/transport/listeners.ts";
import { createRedisCluster } from "../../src/cluster/mod.ts";

const { config } = loadConfig({ args: Deno.args, env: Deno.env.toObject() });
const log = createLogger(config.logLevel);
const { store, cluster } = createRedisCluster(config, log);
const broker = new Broker({
  options: {
    ...defaultBrokerOptions,
    brokerId: config.brokerId,
    nodeId: config.nodeId || crypto.randomUUID(),
    maxInflight: config.maxInflight,
    maxQueuedMessages: config.maxQueuedMessages,
    sessionExpiryInterval: config.sessionExpiryInterval || EXPIRY_NEVER,
    keepAlive: config.keepAlive,
    durable: true,
  },
  store,
  log,
  cluster,
});
try {
  await broker.start();
} catch (err) {
  log.error(`cannot start: ${(err as Error).message}`);
  Deno.exit(1);
}
const listeners = startListeners(config, (conn) => void broker.handleConnection(conn), log);
const { promise, resolve } = Promise.withResolvers<void>();
Deno.addSignalListener("SIGTERM", () => resolve());
Deno.addSignalListener("SIGINT", () => resolve());
await promise;
listeners.close();
await broker.close();
Deno.exit(0);
