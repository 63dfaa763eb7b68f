/**
 * What Redis keeps on disk, read at start-up: the cluster acknowledges a QoS 1/2 message once it
 * is in Redis, so a Redis that keeps no append-only file loses acknowledged messages when it
 * restarts. Warns (or, with `redis.require-persistence`, refuses to start) when it cannot keep
 * them.
 */
import type { RedisClient } from "./conn.ts";

/** One Redis server's persistence settings, or why they could not be read. */
export interface PersistenceReport {
  where: string;
  appendonly?: string;
  appendfsync?: string;
  save?: string;
  error?: string;
}

/** Whether a server with these settings keeps what was written before a restart of Redis. */
export function keepsAcknowledged(r: PersistenceReport): boolean {
  return r.error === undefined && r.appendonly === "yes";
}

/** A plain description of what a Redis restart would lose, or null if nothing. */
export function persistenceProblem(r: PersistenceReport): string | null {
  if (r.error !== undefined) {
    return `cannot read the persistence settings of Redis ${r.where} (CONFIG GET failed: ` +
      `${r.error}; CONFIG may be disabled or renamed): make sure it runs with appendonly yes, ` +
      `or a Redis restart loses acknowledged messages`;
  }
  if (r.appendonly === "yes") return null;
  if (r.save) {
    return `Redis ${r.where} keeps no append-only file (appendonly no), only RDB snapshots ` +
      `(save "${r.save}"): a Redis restart loses every acknowledged message, session change and ` +
      `retained message since the last snapshot. Set appendonly yes`;
  }
  return `Redis ${r.where} keeps nothing on disk (appendonly no, save ""): a Redis restart loses ` +
    `every session, queued and retained message, acknowledged or not. Set appendonly yes`;
}

async function configGet(redis: RedisClient, key: string): Promise<string> {
  const r = await redis.call("CONFIG", "GET", key) as string[];
  return r.length >= 2 ? String(r[1]) : "";
}

/** Reads appendonly, appendfsync and save from every master (one server, or each in a cluster). */
export async function readPersistence(
  redis: RedisClient,
  where: string,
): Promise<PersistenceReport[]> {
  const servers: { client: RedisClient; where: string }[] = "nodes" in redis &&
      typeof (redis as { nodes?: unknown }).nodes === "function" && "isCluster" in redis &&
      (redis as { isCluster: boolean }).isCluster
    ? (redis as import("ioredis").Cluster).nodes("master").map((n) => ({
      client: n as RedisClient,
      where: `${n.options.host}:${n.options.port}`,
    }))
    : [{ client: redis, where }];
  const out: PersistenceReport[] = [];
  for (const s of servers) {
    try {
      out.push({
        where: s.where,
        appendonly: await configGet(s.client, "appendonly"),
        appendfsync: await configGet(s.client, "appendfsync"),
        save: await configGet(s.client, "save"),
      });
    } catch (e) {
      out.push({ where: s.where, error: (e as Error).message });
    }
  }
  return out;
}

/**
 * Logs what a Redis restart would lose; with `require`, throws instead (naming the key that
 * allows the start anyway).
 */
export async function checkPersistence(
  redis: RedisClient,
  where: string,
  log: { info(m: string): void; warn(m: string): void },
  require: boolean,
): Promise<void> {
  const reports = await readPersistence(redis, where);
  const problems = reports.map(persistenceProblem).filter((p): p is string => p !== null);
  if (problems.length === 0) {
    const fsync = reports.map((r) => r.appendfsync).join(", ");
    log.info(`store: Redis keeps an append-only file (appendfsync ${fsync})`);
    return;
  }
  if (require) {
    throw new Error(
      `${problems.join("; ")}. Refusing to start (redis.require-persistence is true; set it ` +
        `false to start anyway with this warning).`,
    );
  }
  for (const p of problems) {
    log.warn(`store: ${p} (set redis.require-persistence: true to refuse to start instead)`);
  }
}
