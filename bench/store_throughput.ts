/**
 * Store throughput for the QoS 1 hot path: per message one putOutbound for one session and one
 * flush, with many messages in flight at once (as many publishers awaiting their PUBACK), for
 * each store: memory, Redis (plain, and fenced as a cluster node writes; a throw-away
 * redis-server) and SQLite.
 * Also reports how long each commit blocks the calling thread: that is what the clients of a
 * broker serving sockets on the same thread would feel as added latency.
 *
 *   deno run -A bench/store_throughput.ts [messages] [inFlight]
 */
import { MemoryStore } from "../src/store/memory.ts";
import { RedisStore } from "../src/store/redis.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import type { Store } from "../src/broker/ports/store.ts";
import { startRedis } from "../tests/helpers/redis.ts";

const MESSAGES = Number(Deno.args[0] ?? 50_000);
const IN_FLIGHT = Number(Deno.args[1] ?? 1_000);
const payload = new Uint8Array(100).fill(42);

interface Variant {
  name: string;
  make(dir: string): Store;
}

const quiet = { info() {}, warn: console.warn, error: console.error };
const sqlite = (durability: "sync" | "interval", worker: boolean) => (dir: string) =>
  new SqliteStore({ dir, durability, commitIntervalMs: 10, worker, logger: quiet });

// A throw-away redis-server (append-only file on, as in production): the cluster's store, plain
// and as a cluster node writes (every commit one fenced script carrying the epoch, see
// src/redis/fence.ts).
const redis = await startRedis({ aof: true });
const EPOCH_KEY = "bench:epoch";
await redis.cli("set", EPOCH_KEY, "1");
let redisRuns = 0;
const redisStore = (fence: boolean) => () => {
  const store = new RedisStore({
    mode: "normal",
    host: "127.0.0.1",
    port: redis.port,
    keyPrefix: `bench${++redisRuns}:`,
    logger: quiet,
  });
  if (fence) store.setFence({ key: EPOCH_KEY, epoch: "1", valid: () => "1" });
  return store;
};

const variants: Variant[] = [
  { name: "memory", make: () => new MemoryStore() },
  { name: "redis", make: redisStore(false) },
  { name: "redis fenced (cluster)", make: redisStore(true) },
  { name: "sqlite sync worker", make: sqlite("sync", true) },
  { name: "sqlite sync in-thread", make: sqlite("sync", false) },
  { name: "sqlite interval worker", make: sqlite("interval", true) },
  { name: "sqlite interval in-thread", make: sqlite("interval", false) },
];

async function run(store: Store, ackRemoves: boolean): Promise<number> {
  store.saveSession({
    clientId: "s",
    expiryInterval: 3600,
    disconnectedAt: null,
    protocolVersion: 5,
  });
  await store.flush();
  let seq = 0;
  const start = performance.now();
  const one = async () => {
    while (seq < MESSAGES) {
      const n = ++seq;
      store.putOutbound("s", {
        seq: n,
        qos: 1,
        retain: false,
        state: "sent",
        packetId: (n % 65535) + 1,
        message: {
          id: `node-${n}`,
          topic: "bench/t",
          payload,
          qos: 1,
          retain: false,
          createdAt: Date.now(),
        },
      });
      await store.flush();
      // The subscriber's PUBACK, arriving once the message is out.
      if (ackRemoves) store.removeOutbound("s", n);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, one));
  // Counts the time to make everything durable even where flush() does not wait for it.
  await store.close();
  return MESSAGES / ((performance.now() - start) / 1000);
}

console.log(`${MESSAGES} messages, ${IN_FLIGHT} in flight, 100-byte payloads`);
for (const ackRemoves of [false, true]) {
  console.log(ackRemoves ? "\nput + flush + remove (online subscriber acks)" : "\nput + flush");
  for (const v of variants) {
    const dir = await Deno.makeTempDir({ prefix: "mqttwk-bench-" });
    const store = v.make(dir);
    await store.open();
    try {
      const rate = await run(store, ackRemoves);
      let commits = "";
      if (store instanceof SqliteStore) {
        const s = store.stats();
        commits = `  ${s.commits} commits, avg ${(s.mutations / s.commits).toFixed(0)} ops, ` +
          `avg ${(s.commitMs / s.commits).toFixed(2)} ms; event loop blocked by commits: ` +
          `avg ${(s.blockedMs / s.commits).toFixed(2)} ms, max ${s.maxBlockedMs.toFixed(2)} ms`;
      }
      console.log(
        `  ${v.name.padEnd(26)} ${Math.round(rate).toString().padStart(9)} msg/s   ` +
          commits,
      );
    } finally {
      await store.close();
      await Deno.remove(dir, { recursive: true });
    }
  }
}
await redis.stop();
