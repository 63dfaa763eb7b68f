/**
 * Redis connections for the Redis store and the cluster link: one server ("normal") or a Redis
 * Cluster ("cluster"), with the reconnect policy shared by both (capped backoff, commands queued
 * while disconnected and sent once the connection is back) and one way of noticing outages.
 */
import { Cluster, Redis, type RedisOptions } from "ioredis";

export type RedisClient = Redis | Cluster;

/** Where Redis is and how to name things in it: the `redis.*` settings. */
export interface RedisConnOptions {
  mode: "normal" | "cluster";
  host: string;
  port: number;
  password?: string;
  database?: number;
  /** Cluster mode: "host:port,host:port" or a list. */
  nodes?: string | string[];
  /** Prefix of every key and channel (default "mqttwk:"). */
  keyPrefix?: string;
}

/** Longest pause between reconnect attempts. */
export const MAX_RECONNECT_MS = 1000;

/** Pause before reconnect attempt `times`: exponential from 100 ms, capped at 1 s. */
export function reconnectDelay(times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 10), MAX_RECONNECT_MS);
}

/** How one connection behaves. */
export interface ConnectOptions {
  /** Connection name shown by CLIENT LIST. */
  name: string;
  /** Fail commands after this many reconnect attempts; null = queue them until Redis is back. */
  maxRetriesPerRequest?: number | null;
  /** Batch commands issued in the same tick into one write (default true). */
  autoPipelining?: boolean;
}

/** Parses "host:port,host:port" (IPv6 in brackets allowed; port 6379 if missing). */
export function parseNodes(nodes: string | string[] | undefined): { host: string; port: number }[] {
  const list = Array.isArray(nodes) ? nodes : (nodes ?? "").split(",");
  return list.map((s) => s.trim()).filter(Boolean).map((s) => {
    const i = s.lastIndexOf(":");
    if (i <= 0) return { host: s, port: 6379 };
    return { host: s.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(s.slice(i + 1)) };
  });
}

/** Creates a (lazily connecting) client; call `.connect()` or issue a command to connect. */
export function createRedis(opts: RedisConnOptions, c: ConnectOptions): RedisClient {
  const base: RedisOptions = {
    connectionName: c.name,
    password: opts.password || undefined,
    lazyConnect: true,
    maxRetriesPerRequest: c.maxRetriesPerRequest === undefined ? null : c.maxRetriesPerRequest,
    enableAutoPipelining: c.autoPipelining ?? true,
    retryStrategy: reconnectDelay,
    enableOfflineQueue: true,
    // Keep a dead TCP peer (Redis host gone) from hanging commands forever.
    keepAlive: 10_000,
  };
  if (opts.mode === "cluster") {
    const nodes = parseNodes(opts.nodes);
    if (nodes.length === 0) {
      throw new Error('redis.mode is "cluster" but redis.nodes is empty; set "host:port,..."');
    }
    return new Cluster(nodes, {
      lazyConnect: true,
      enableAutoPipelining: c.autoPipelining ?? true,
      clusterRetryStrategy: reconnectDelay,
      enableOfflineQueue: true,
      maxRedirections: 16,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 200,
      redisOptions: { ...base, lazyConnect: true },
    });
  }
  return new Redis({ ...base, host: opts.host, port: opts.port, db: opts.database ?? 0 });
}

/** Where a Redis is, for messages: never includes the password. */
export function describeRedis(opts: RedisConnOptions): string {
  return opts.mode === "cluster"
    ? `Redis Cluster ${parseNodes(opts.nodes).map((n) => `${n.host}:${n.port}`).join(",")}`
    : `Redis ${opts.host}:${opts.port}/${opts.database ?? 0}`;
}

/** What the owner of a connection hears about its outages. */
export interface ConnectionWatch {
  /** The first sign of an outage (an error, or `lost` for a closed connection), once per outage. */
  down(why: string): void;
  /** The connection is ready again (`wasDown`: after an outage) or for the first time. */
  up?(wasDown: boolean): void;
}

/**
 * Reports a connection's outages once each, however many errors the reconnect attempts raise
 * (ioredis emits one per attempt), and keeps unhandled "error" events from crashing the process.
 * `closeIsOutage`: a closed connection counts as an outage at once, before any error.
 */
export function watchConnection(
  client: RedisClient,
  where: string,
  watch: ConnectionWatch,
  closeIsOutage = false,
): void {
  let down = false;
  const lost = (why: string) => {
    if (down) return;
    down = true;
    watch.down(why);
  };
  client.on("error", (err: Error) => lost(`${where} unreachable: ${err.message}`));
  if (closeIsOutage) client.on("close", () => lost(`connection to ${where} lost`));
  client.on("ready", () => {
    const wasDown = down;
    down = false;
    watch.up?.(wasDown);
  });
}

/** Silences a connection whose outages its owner learns of through another connection. */
export function ignoreErrors(client: RedisClient): void {
  client.on("error", () => {});
}
