/**
 * Command helpers shared by the Redis store and the cluster link: the few calls that need care
 * with auto-pipelining on a Redis Cluster, transaction result checks and timeouts.
 */
import type { Buffer } from "node:buffer";
import type { RedisClient } from "./conn.ts";

/**
 * EVAL that also works on a Redis Cluster with auto-pipelining (which would route by the script
 * text, not the keys): sent as its own one-command pipeline.
 */
export async function evalScript(
  redis: RedisClient,
  script: string,
  keys: string[],
  args: (string | number | Buffer)[],
): Promise<unknown> {
  const res = await redis.pipeline().eval(script, keys.length, ...keys, ...args).exec();
  if (!res) throw new Error("Redis pipeline aborted");
  const [err, value] = res[0];
  if (err) throw err;
  return value;
}

/** callBuffer through an explicit pipeline: auto-pipelining drops the command name of `call`. */
export async function callBuffer(
  redis: RedisClient,
  command: string,
  ...args: (string | number)[]
): Promise<unknown> {
  const res = await redis.pipeline().callBuffer(command, ...args).exec();
  if (!res) throw new Error("Redis pipeline aborted");
  if (res[0][0]) throw res[0][0];
  return res[0][1];
}

/** Throws the first error of a MULTI/pipeline result (null: the transaction was aborted). */
export function checkExec(res: [Error | null, unknown][] | null): void {
  if (!res) throw new Error("Redis transaction aborted");
  for (const [err] of res) if (err) throw err;
}

/** Rejects with "`what` timed out after `ms` ms" unless `p` settles first. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Whether a Redis error reply starts with (or contains) `code`, e.g. "NOGROUP", "BUSYGROUP". */
export function isRedisError(e: unknown, code: string): boolean {
  return String((e as Error)?.message ?? e).includes(code);
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
