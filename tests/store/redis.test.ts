import assert from "node:assert/strict";
import { RedisStore, type RedisStoreOptions } from "../../src/store/redis.ts";
import { entry, message, session, storeContract } from "./contract.ts";
import {
  HAVE_REDIS,
  REDIS_IGNORE,
  startRedis,
  startRedisCluster,
  testPrefix,
} from "../helpers/redis.ts";
import { waitFor } from "../helpers/wait.ts";

const quiet = { info() {}, warn() {}, error() {} };

// One standalone server and one 3-master cluster for the whole file; each case its own prefix.
const standalone = HAVE_REDIS ? await startRedis() : null;
const cluster = HAVE_REDIS ? await startRedisCluster() : null;

function standaloneOpts(prefix: string, extra: Partial<RedisStoreOptions> = {}): RedisStoreOptions {
  return {
    mode: "normal",
    host: "127.0.0.1",
    port: standalone?.port ?? 1,
    keyPrefix: prefix,
    logger: quiet,
    ...extra,
  };
}

function clusterOpts(prefix: string, extra: Partial<RedisStoreOptions> = {}): RedisStoreOptions {
  return {
    mode: "cluster",
    host: "",
    port: 0,
    nodes: cluster?.nodes ?? "127.0.0.1:1",
    keyPrefix: prefix,
    logger: quiet,
    ...extra,
  };
}

function contractFor(name: string, opts: (prefix: string) => RedisStoreOptions) {
  if (REDIS_IGNORE) {
    Deno.test({ name: `${name}: contract (redis-server missing)`, ignore: true, fn() {} });
    return;
  }
  storeContract(name, () => {
    const prefix = testPrefix("contract");
    return Promise.resolve({
      store: new RedisStore(opts(prefix)),
      reopen: () => Promise.resolve(new RedisStore(opts(prefix))),
      cleanup: () => Promise.resolve(),
    });
  });
}

contractFor("redis standalone", (p) => standaloneOpts(p));
contractFor("redis standalone tiny batches", (p) => standaloneOpts(p, { maxBatchOps: 3 }));
contractFor("redis cluster", (p) => clusterOpts(p));

async function withStore(
  opts: RedisStoreOptions,
  fn: (s: RedisStore) => Promise<void>,
): Promise<void> {
  const s = new RedisStore(opts);
  await s.open();
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

Deno.test({
  name: "redis store: the key prefix is applied to every key and one session shares one slot",
  ignore: REDIS_IGNORE,
  fn: async () => {
    const prefix = testPrefix("layout");
    await withStore(standaloneOpts(prefix), async (s) => {
      s.saveSession(session("dev{1}", { disconnectedAt: null }));
      s.addSubscription("dev{1}", { filter: "a/#", qos: 1 });
      s.putOutbound("dev{1}", entry(1));
      s.addInboundQos2("dev{1}", 9);
      s.setRetained("r", message("r", { topic: "r" }));
      await s.flush();
      const keys = (await standalone!.cli("--scan", "--pattern", `${prefix}*`)).trim().split("\n")
        .sort();
      assert.deepEqual(keys, [
        `${prefix}s:{dev{1%7D}:out`,
        `${prefix}s:{dev{1%7D}:q2`,
        `${prefix}s:{dev{1%7D}:s`,
        `${prefix}s:{dev{1%7D}:sub`,
        `${prefix}{g}:retained`,
        `${prefix}{g}:sessions`,
      ]);
      const slots = new Set<string>();
      for (const k of keys.filter((k) => k.includes("s:{"))) {
        slots.add((await cluster!.servers[0].cli("cluster", "keyslot", k)).trim());
      }
      assert.equal(slots.size, 1);
      assert.match([...slots][0], /^\d+$/);
    });
  },
});

Deno.test({
  name: "redis store: disconnected sessions get a TTL, connected and never-expiring ones none",
  ignore: REDIS_IGNORE,
  fn: async () => {
    const prefix = testPrefix("ttl");
    await withStore(standaloneOpts(prefix, { ttlGraceSeconds: 10 }), async (s) => {
      s.saveSession(session("off", { expiryInterval: 100, disconnectedAt: Date.now() }));
      s.putOutbound("off", entry(1));
      s.saveSession(session("on", { expiryInterval: 100, disconnectedAt: null }));
      s.putOutbound("on", entry(1));
      await s.flush();
      const ttl = async (k: string) => Number((await standalone!.cli("pttl", k)).trim());
      const off = ttl(`${prefix}s:{off}:out`);
      const t = await off;
      assert.ok(t > 100_000 && t <= 110_000, `ttl ${t}`);
      assert.equal(await ttl(`${prefix}s:{on}:out`), -1);
      // An entry queued later for the offline session inherits the TTL.
      s.addSubscription("off", { filter: "x", qos: 1 });
      await s.flush();
      assert.ok((await ttl(`${prefix}s:{off}:sub`)) > 100_000);
      // Reconnecting removes it.
      s.saveSession(session("off", { expiryInterval: 100, disconnectedAt: null }));
      await s.flush();
      assert.equal(await ttl(`${prefix}s:{off}:out`), -1);
      assert.equal(await ttl(`${prefix}s:{off}:sub`), -1);
    });
  },
});

Deno.test({
  name: "redis store: commits survive a Redis restart and flush waits for Redis to come back",
  ignore: REDIS_IGNORE,
  fn: async () => {
    const server = await startRedis({ aof: true });
    try {
      const prefix = testPrefix("restart");
      const warnings: string[] = [];
      const logger = { ...quiet, warn: (m: string) => warnings.push(m) };
      const opts = { ...standaloneOpts(prefix), port: server.port, logger };
      await withStore(opts, async (s) => {
        s.saveSession(session("a"));
        s.putOutbound("a", entry(1));
        await s.flush();
        await server.stop();
        s.putOutbound("a", entry(2));
        const flushed = s.flush();
        // Redis comes back only once the store has found it gone, with the flush in between.
        await waitFor(() => warnings.some((w) => /unreachable/.test(w)), {
          what: "the store to report Redis unreachable",
          detail: () => `warnings: ${JSON.stringify(warnings)}`,
        });
        await server.start();
        await flushed.catch(() => s.flush());
        await s.flush();
        assert.deepEqual((await s.loadSession("a"))?.outbound.map((e) => e.seq), [1, 2]);
      });
    } finally {
      await server.kill();
    }
  },
});

Deno.test({
  name: "redis store: open fails with a clear error when Redis is unreachable",
  ignore: REDIS_IGNORE,
  fn: async () => {
    const s = new RedisStore({ ...standaloneOpts(testPrefix("x")), port: 1 });
    await assert.rejects(s.open(), /Cannot reach Redis 127\.0\.0\.1:1\/0/);
    await s.close();
  },
});

globalThis.addEventListener("unload", () => {
  // Servers are killed by the helper's own unload handler.
  void cluster;
});

for (const [kind, opts] of [["standalone", standaloneOpts], ["cluster", clusterOpts]] as const) {
  Deno.test({
    name: `redis store (${kind}): a long queue loads as its oldest page, the rest page by page ` +
      `in seq order`,
    ignore: REDIS_IGNORE,
    fn: async () => {
      await withStore(opts(testPrefix("paged")), async (s) => {
        s.saveSession(session("big"));
        // Seqs with gaps and of different lengths (numeric order, not string order), written
        // in an order that is not theirs.
        const seqs = Array.from({ length: 2500 }, (_, i) => 7 + i * 3);
        const order = [...seqs].sort((a, b) => (a * 7919) % 2503 - (b * 7919) % 2503);
        for (const seq of order) s.putOutbound("big", entry(seq));
        s.putOutbound("big", entry(7, { state: "sent", packetId: 4 }));
        await s.flush();
        const got = await s.loadSession("big");
        assert.ok(got?.rest, "the queue beyond the first page is left to read");
        assert.equal(got.outbound.length, 1000);
        assert.deepEqual(got.outbound[0], entry(7, { state: "sent", packetId: 4 }));
        assert.equal(got.rest.remaining, 1500);
        assert.equal(got.rest.lastSeq, seqs[seqs.length - 1]);
        const all = [...got.outbound];
        for (let page = await got.rest.next(); page.length; page = await got.rest.next()) {
          assert.ok(page.length <= 1000);
          all.push(...page);
        }
        assert.equal(got.rest.remaining, 0);
        assert.deepEqual(all.map((e) => e.seq), seqs);
        // A short queue comes whole.
        s.saveSession(session("small"));
        for (const seq of seqs.slice(0, 10)) s.putOutbound("small", entry(seq));
        await s.flush();
        const small = await s.loadSession("small");
        assert.equal(small?.rest, undefined);
        assert.deepEqual(small?.outbound.map((e) => e.seq), seqs.slice(0, 10));
      });
    },
  });
}
