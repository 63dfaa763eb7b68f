/**
 * Issue 17, item 7: at start-up the Redis store reads what Redis keeps on disk and warns (or,
 * with redis.require-persistence, refuses) when a Redis restart would lose acknowledged messages.
 * Real redis-server processes with different settings.
 */
import assert from "node:assert/strict";
import { RedisStore } from "../../src/store/redis.ts";
import { REDIS_IGNORE, startRedis, testPrefix } from "../helpers/redis.ts";

function logger() {
  const lines: string[] = [];
  return {
    lines,
    info: (m: string) => lines.push("info " + m),
    warn: (m: string) => lines.push("warn " + m),
    error: (m: string) => lines.push("error " + m),
  };
}

async function openWith(port: number, requirePersistence: boolean) {
  const log = logger();
  const store = new RedisStore({
    mode: "normal",
    host: "127.0.0.1",
    port,
    keyPrefix: testPrefix("persist"),
    logger: log,
    requirePersistence,
  });
  let error: Error | null = null;
  try {
    await store.open();
  } catch (e) {
    error = e as Error;
  }
  await store.close();
  return { log, error };
}

Deno.test({
  name: "a Redis without an append-only file gets a warning, or refuses the start when required",
  ignore: REDIS_IGNORE,
  fn: async () => {
    const redis = await startRedis();
    try {
      await redis.cli("CONFIG", "SET", "appendonly", "no");
      await redis.cli("CONFIG", "SET", "save", "3600 1");
      const warned = await openWith(redis.port, false);
      assert.equal(warned.error, null);
      assert.ok(
        warned.log.lines.some((l) => /^warn .*appendonly no.*RDB snapshots.*save "3600 1"/.test(l)),
        warned.log.lines.join("\n"),
      );
      await redis.cli("CONFIG", "SET", "save", "");
      const refused = await openWith(redis.port, true);
      assert.match(
        refused.error?.message ?? "",
        /keeps nothing on disk.*redis\.require-persistence/,
      );
    } finally {
      await redis.stop();
    }
  },
});

Deno.test({
  name: "a Redis with appendonly yes starts quietly, also when persistence is required",
  ignore: REDIS_IGNORE,
  fn: async () => {
    const redis = await startRedis({ aof: true });
    try {
      const r = await openWith(redis.port, true);
      assert.equal(r.error, null);
      assert.ok(
        r.log.lines.some((l) => /^info .*append-only file/.test(l)),
        r.log.lines.join("\n"),
      );
      assert.ok(!r.log.lines.some((l) => l.startsWith("warn")), r.log.lines.join("\n"));
    } finally {
      await redis.stop();
    }
  },
});

Deno.test({
  name: "a Redis with CONFIG disabled is reported as unknown, and refused when required",
  ignore: REDIS_IGNORE,
  fn: async () => {
    const redis = await startRedis({ aof: true });
    try {
      // What managed Redis services do: CONFIG renamed away (ACL: the command is not allowed).
      await redis.cli("ACL", "SETUSER", "default", "-config");
      const warned = await openWith(redis.port, false);
      assert.equal(warned.error, null);
      assert.ok(
        warned.log.lines.some((l) => /^warn .*cannot read the persistence settings/.test(l)),
        warned.log.lines.join("\n"),
      );
      const refused = await openWith(redis.port, true);
      assert.match(refused.error?.message ?? "", /cannot read the persistence settings/);
    } finally {
      await redis.cli("ACL", "SETUSER", "default", "+config").catch(() => "");
      await redis.stop();
    }
  },
});
