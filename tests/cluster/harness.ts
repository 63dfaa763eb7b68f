/**
 * In-process cluster nodes for tests: a Broker with a RedisStore and a RedisClusterLink, driven
 * over in-memory connections (tests/broker/memory_pipe.ts).
 */
import { Broker } from "../../src/broker/broker.ts";
import { defaultBrokerOptions } from "../../src/broker/options.ts";
import { RedisClusterLink } from "../../src/cluster/redis_link.ts";
import { createLogger, type Logger, silentLogger } from "../../src/log.ts";
import { RedisStore, type RedisStoreOptions } from "../../src/store/redis.ts";
import { EXPIRY_NEVER } from "../../src/broker/model.ts";
import type { RedisConnOptions } from "../../src/redis/conn.ts";

export interface Node {
  id: string;
  broker: Broker;
  store: RedisStore;
  link: RedisClusterLink;
  close(): Promise<void>;
}

export interface NodeOptions {
  nodeTimeoutMs?: number;
  verbose?: boolean;
}

export function logger(verbose = false): Logger {
  return verbose || Deno.env.get("MQTTWK_TEST_VERBOSE") ? createLogger("debug") : silentLogger;
}

export async function startNode(
  redis: RedisConnOptions,
  id: string,
  opts: NodeOptions = {},
): Promise<Node> {
  const log = logger(opts.verbose);
  const storeOpts: RedisStoreOptions = { ...redis, logger: log };
  const store = new RedisStore(storeOpts);
  const link = new RedisClusterLink(store, { nodeTimeoutMs: opts.nodeTimeoutMs ?? 1000 });
  const broker = new Broker({
    options: {
      ...defaultBrokerOptions,
      nodeId: id,
      durable: true,
      sessionExpiryInterval: EXPIRY_NEVER,
    },
    store,
    log,
    cluster: link,
  });
  await broker.start();
  return { id, broker, store, link, close: () => broker.close() };
}

/** Waits until `check` passes (routes propagate asynchronously through Redis pub/sub). */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  what = "condition",
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
