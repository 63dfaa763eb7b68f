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
import type { PublishPacket } from "../../src/codec/packets.ts";
import type { Authorizer } from "../../src/broker/ports/auth.ts";
import type { MemoryClient } from "../broker/memory_pipe.ts";
import { Redis } from "ioredis";
import { RedisKeys } from "../../src/redis/keys.ts";
import { testPrefix } from "../helpers/redis.ts";
import { withTimeout } from "../../src/redis/commands.ts";

export interface Node {
  id: string;
  broker: Broker;
  store: RedisStore;
  link: RedisClusterLink;
  close(): Promise<void>;
}

/** How long a node may take to stop before its test fails. */
const STOP_MS = 20_000;

/**
 * Closes `nodes` one by one; a close that failed is ignored (a test may have taken Redis away),
 * one that did not finish in time fails the test once all were tried.
 */
export async function closeAll(nodes: Node[]): Promise<void> {
  let stuck: unknown = null;
  for (const n of nodes) {
    await n.close().catch((e) => {
      if (String(e?.message).startsWith("stopping node")) stuck ??= e;
    });
  }
  if (stuck) throw stuck;
}

export interface NodeOptions {
  nodeTimeoutMs?: number;
  verbose?: boolean;
  /** Topic rules for the node's clients (every node of a cluster has the same in practice). */
  authorizer?: Authorizer;
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
    ...(opts.authorizer ? { authorizer: opts.authorizer } : {}),
  });
  await broker.start();
  return {
    id,
    broker,
    store,
    link,
    // A node that never stops would hang the whole test run (CI's time limit, not a failure).
    close: () => withTimeout(broker.close(), STOP_MS, `stopping node ${id}`),
  };
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

/**
 * Runs `fn` with two nodes on the Redis at `port`, under a fresh key prefix starting `prefix`;
 * closes whichever started, even when the second failed to.
 */
export async function twoNodes(
  port: number | undefined,
  prefix: string,
  fn: (n1: Node, n2: Node) => Promise<void>,
): Promise<void> {
  const redis: RedisConnOptions = {
    mode: "normal",
    host: "127.0.0.1",
    port: port ?? 1,
    keyPrefix: testPrefix(prefix),
  };
  const nodes: Node[] = [];
  try {
    nodes.push(await startNode(redis, "n1"));
    nodes.push(await startNode(redis, "n2"));
    await fn(nodes[0], nodes[1]);
  } finally {
    await closeAll(nodes);
  }
}

/**
 * Runs `fn` with nodes `ids` on the Redis at `port`, under a fresh key prefix starting `prefix`,
 * with the prefix's key names and a plain Redis client for looking behind the nodes' backs;
 * closes whichever nodes started and the client, even when `fn` or a start failed.
 */
export async function withNodes(
  port: number | undefined,
  prefix: string,
  ids: string[],
  fn: (nodes: Node[], keys: RedisKeys, r: Redis) => Promise<void>,
): Promise<void> {
  const keyPrefix = testPrefix(prefix);
  const conn: RedisConnOptions = { mode: "normal", host: "127.0.0.1", port: port ?? 1, keyPrefix };
  const r = new Redis({ port: port ?? 1, lazyConnect: true });
  const nodes: Node[] = [];
  try {
    await r.connect();
    for (const id of ids) nodes.push(await startNode(conn, id));
    await fn(nodes, new RedisKeys(keyPrefix), r);
  } finally {
    try {
      await closeAll(nodes);
    } finally {
      r.disconnect();
    }
  }
}

/** Receives one PUBLISH and completes its QoS flow. */
export async function receive(c: MemoryClient, timeoutMs = 5000): Promise<PublishPacket> {
  const p = await c.next("publish", timeoutMs);
  if (p.qos === 1) await c.send({ type: "puback", packetId: p.packetId! });
  if (p.qos === 2) {
    await c.send({ type: "pubrec", packetId: p.packetId! });
    await c.next("pubrel");
    await c.send({ type: "pubcomp", packetId: p.packetId! });
  }
  return p;
}
