/**
 * Redis store (the shared persistence of a cluster), over one Redis server or a Redis Cluster.
 *
 * Key layout (prefix `P`, default "mqttwk:"); `{…}` is a Redis Cluster hash tag, so every key of
 * one session lives in one slot and one session's update is one atomic MULTI:
 *   P s:{<id>}:s     session record (binary, see redis_codec.ts)
 *   P s:{<id>}:sub   hash filter -> subscription JSON
 *   P s:{<id>}:out   hash seq -> outbound entry (binary)
 *   P s:{<id>}:q2    set of inbound QoS 2 packet ids
 *   P s:{<id>}:exp   ms since epoch when the (disconnected) session expires; absent otherwise
 *   P {g}:sessions   set of every session id (loadSessions; never KEYS or SCAN)
 *   P {g}:expiry     sorted set id -> expiry time, disconnected sessions only
 *   P {g}:retained   hash topic -> retained message (binary)
 * (<id> is the client id with "%" and "}" percent-escaped, so the tag is always the whole id.)
 *
 * Group commit as in the SQLite store: mutations are coalesced in memory and written by one
 * commit at a time — one MULTI pipeline on a single server, one MULTI per slot (sent at once)
 * on a Redis Cluster — `commitIntervalMs` after the first mutation, at `maxBatchOps` mutations,
 * or when flushed. A failed commit rejects the flushes waiting for it, is logged, and is retried
 * with backoff under newer mutations until it succeeds.
 *
 * Disconnected sessions with a finite expiry carry a Redis TTL (expiry + `ttlGraceSeconds`,
 * counted from their last save) as a backstop, so sessions do not leak even when no node is left
 * to expire them; deleteExpiredSessions() reads the expiry sorted set.
 */
import type { Buffer } from "node:buffer";
import type { ChainableCommander } from "ioredis";
import {
  decodeEntry,
  decodeMessage,
  decodeValue,
  encodeEntry,
  encodeMessage,
  encodeValue,
} from "./redis_codec.ts";
import {
  createRedis,
  describeRedis,
  ignoreErrors,
  type RedisClient,
  type RedisConnOptions,
  watchConnection,
} from "../redis/conn.ts";
import { checkExec, evalScript, sleep, withTimeout } from "../redis/commands.ts";
import { DEFAULT_PREFIX, RedisKeys } from "../redis/keys.ts";
import { checkPersistence } from "../redis/persistence.ts";
import { applyArgs, type Fence, fenced, FENCED_APPLY, isFenced } from "../redis/fence.ts";
import { Batch, buildCommands } from "./redis_batch.ts";
import { QUEUE_PAGE, readEntries, StoredQueueRest } from "./redis_queue.ts";
import { consoleStoreLogger, type StoreLogger } from "./logger.ts";
import {
  EXPIRY_NEVER,
  type LoadedSession,
  type OutboundEntry,
  type SessionRecord,
  type StoredMessage,
  type SubscriptionRecord,
} from "../broker/model.ts";
import type { Store } from "../broker/ports/store.ts";

export interface RedisStoreOptions extends RedisConnOptions {
  logger?: StoreLogger;
  /** Longest time a mutation waits before a commit starts (default 2 ms). */
  commitIntervalMs?: number;
  /** Batch size that starts a commit at once (default 1000). */
  maxBatchOps?: number;
  /** Seconds a disconnected session's keys outlive its expiry before Redis drops them (600). */
  ttlGraceSeconds?: number;
  /** Refuse open() when Redis keeps no append-only file (else a warning is logged). */
  requirePersistence?: boolean;
}

const MAX_RETRY_MS = 2000;
/** Checks the epoch only (Redis Cluster: before the per-slot transactions). */
const EPOCH_CHECK = fenced("return 1");
const RESOLVED: Promise<void> = Promise.resolve();

/** Deletes the session if it expired (or its keys already timed out); else returns its deadline. */
const DELETE_IF_EXPIRED = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
  return 1
end
local d = redis.call('GET', KEYS[5])
if d and tonumber(d) <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
  return 1
end
if d then return d end
return -1`;

export class RedisStore implements Store {
  readonly options: RedisStoreOptions;
  readonly keys: RedisKeys;
  readonly cluster: boolean;
  #log: StoreLogger;
  #redis: RedisClient | null = null;
  #opened = false;
  #closed = false;
  #pending = new Batch();
  #retry: Batch[] = [];
  #lastFailure = "";
  #committing: Promise<void> | null = null;
  #next: Promise<void> | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #failures = 0;
  #commitInterval: number;
  #maxBatchOps: number;
  #graceMs: number;
  #stats = { commits: 0, failedCommits: 0, mutations: 0, commitMs: 0 };
  #fence: Fence | null = null;
  /** Incremented by discardPending: a commit in flight from before is not retried. */
  #generation = 0;

  constructor(opts: RedisStoreOptions) {
    this.options = opts;
    this.keys = new RedisKeys(opts.keyPrefix ?? DEFAULT_PREFIX);
    this.cluster = opts.mode === "cluster";
    this.#log = opts.logger ?? consoleStoreLogger;
    this.#commitInterval = opts.commitIntervalMs ?? 2;
    this.#maxBatchOps = opts.maxBatchOps ?? 1000;
    this.#graceMs = (opts.ttlGraceSeconds ?? 600) * 1000;
  }

  /** Counters for metrics and benchmarks. */
  stats(): { commits: number; failedCommits: number; mutations: number; commitMs: number } {
    return { ...this.#stats };
  }

  /**
   * Writes from now on carry the fencing token of `fence` (a cluster node's lease): each commit
   * waits until the lease is valid and is refused by Redis once another node took this one over.
   */
  setFence(fence: Fence | null): void {
    this.#fence = fence;
  }

  /**
   * Forgets every mutation not yet written (this node was fenced: its sessions are owned by
   * another node now, and these writes would overwrite that node's state). Returns how many.
   */
  discardPending(): number {
    const n = this.#pending.ops + this.#retry.reduce((a, b) => a + b.ops, 0);
    this.#generation++;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending = new Batch();
    this.#retry = [];
    return n;
  }

  /** The store's own connection (the cluster link opens its own). */
  get redis(): RedisClient {
    if (!this.#redis) throw new Error("the Redis store is not open");
    return this.#redis;
  }

  async open(): Promise<void> {
    if (this.#opened) return;
    if (this.#closed) throw new Error("the Redis store was closed; create a new one");
    const where = describeRedis(this.options);
    // Fail fast at start-up instead of queueing forever: the first connect must succeed.
    const probe = createRedis(this.options, {
      name: "mqttwk-store-probe",
      maxRetriesPerRequest: 0,
    });
    ignoreErrors(probe);
    try {
      await withTimeout(probe.connect(), 5000, `connecting to ${where}`);
      await withTimeout(probe.ping(), 5000, `PING ${where}`);
    } catch (e) {
      probe.disconnect();
      throw new Error(
        `Cannot reach ${where}: ${(e as Error).message}. Start Redis or fix redis.* settings.`,
        { cause: e },
      );
    }
    try {
      await checkPersistence(probe, where, this.#log, this.options.requirePersistence ?? false);
    } finally {
      probe.disconnect();
    }
    const redis = createRedis(this.options, { name: "mqttwk-store" });
    watchConnection(redis, where, {
      down: (why) => this.#log.warn(`store: ${why}; retrying`),
      up: (wasDown) => {
        if (wasDown) this.#log.info(`store: ${where} reachable again`);
      },
    });
    await redis.connect();
    this.#redis = redis;
    this.#opened = true;
    this.#log.info(`store: using ${where} (key prefix ${this.keys.prefix})`);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const redis = this.#redis;
    if (!redis) return;
    try {
      if (!this.#pending.empty || this.#retry.length || this.#committing) {
        await withTimeout(this.#drain(), 10_000, "writing the last changes to Redis").catch((e) =>
          this.#log.error(`store: closing with unwritten changes: ${(e as Error).message}`)
        );
      }
    } finally {
      clearTimeout(this.#timer);
      this.#redis = null;
      try {
        await withTimeout(redis.quit(), 2000, "QUIT");
      } catch {
        redis.disconnect();
      }
    }
  }

  // ------------------------------------------------------------------ loads

  async loadSessions(): Promise<LoadedSession[]> {
    await this.#drain();
    const ids = await this.redis.smembers(this.keys.sessions);
    const out: LoadedSession[] = [];
    for (let i = 0; i < ids.length; i += 256) {
      const chunk = await Promise.all(ids.slice(i, i + 256).map((id) => this.#load(id)));
      for (const l of chunk) if (l) out.push(l);
    }
    return out;
  }

  async loadSession(clientId: string): Promise<LoadedSession | null> {
    // What was issued before this call must be written first; waiting until nothing at all is
    // pending would, under steady traffic, wait for a lull (a takeover's CONNACK waits on this).
    await this.flush().catch(() => this.#drain());
    return await this.#load(clientId, true);
  }

  /**
   * `paged`: a queue longer than one page comes back as its oldest page plus `rest`, read later
   * (a resume waits for neither the whole read nor its decoding).
   */
  async #load(clientId: string, paged = false): Promise<LoadedSession | null> {
    const [ks, ksub, kout, kq2] = this.keys.session(clientId);
    const m = this.redis.multi().getBuffer(ks).hgetall(ksub);
    if (paged) m.hkeys(kout);
    else m.hgetallBuffer(kout);
    const res = await m.smembers(kq2).exec();
    if (!res) throw new Error(`loading session ${clientId}: transaction aborted`);
    for (const [err] of res) if (err) throw err;
    const rec = res[0][1] as Buffer | null;
    if (!rec) return null;
    const subs = res[1][1] as Record<string, string>;
    const q2 = res[3][1] as string[];
    let outbound: OutboundEntry[];
    let rest: StoredQueueRest | undefined;
    if (paged) {
      const seqs = (res[2][1] as string[]).map(Number).sort((a, b) => a - b);
      const head = seqs.slice(0, QUEUE_PAGE);
      outbound = await readEntries(this.redis, kout, head);
      if (seqs.length > head.length) {
        rest = new StoredQueueRest(() => this.redis, kout, seqs, head.length);
      }
    } else {
      const outs = res[2][1] as Record<string, Buffer>;
      outbound = Object.values(outs).map(decodeEntry);
      outbound.sort((a, b) => a.seq - b.seq);
    }
    const loaded: LoadedSession = {
      session: decodeValue<SessionRecord>(rec),
      subscriptions: Object.values(subs).map((s) => JSON.parse(s) as SubscriptionRecord),
      outbound,
      inboundQos2: q2.map(Number),
    };
    if (rest) loaded.rest = rest;
    return loaded;
  }

  async loadRetained(): Promise<StoredMessage[]> {
    await this.#drain();
    const all = await this.redis.hgetallBuffer(this.keys.retained);
    return Object.values(all).map(decodeMessage);
  }

  // ------------------------------------------------------------------ mutations

  #batch(): Batch {
    if (this.#closed) throw new Error("the Redis store is closed");
    const b = this.#pending;
    b.ops++;
    this.#stats.mutations++;
    if (b.ops === 1) {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => this.#autoCommit(), this.#commitInterval);
    } else if (b.ops === this.#maxBatchOps) {
      queueMicrotask(() => this.#autoCommit());
    }
    return b;
  }

  /**
   * Units need nothing more here: this store only commits from a timer or a microtask (never in
   * the middle of a synchronous turn), and one commit is one MULTI per hash slot.
   */
  beginUnit(): void {}

  endUnit(): void {}

  failure(): string | null {
    return this.#failures > 0 ? this.#lastFailure : null;
  }

  #autoCommit(): void {
    if (this.#closed && !this.#redis) return;
    this.flush().catch(() => {/* logged by the commit */});
  }

  saveSession(session: SessionRecord): void {
    const ops = this.#batch().of(session.clientId);
    ops.deleted = false;
    ops.record = encodeValue(session);
    const finite = session.disconnectedAt !== null && session.expiryInterval !== EXPIRY_NEVER;
    ops.deadline = finite ? session.disconnectedAt! + session.expiryInterval * 1000 : null;
    ops.ttlMs = finite ? session.expiryInterval * 1000 + this.#graceMs : null;
  }

  deleteSession(clientId: string): void {
    const b = this.#batch();
    b.sessions.set(clientId, {
      reset: true,
      deleted: true,
      subs: new Map(),
      out: new Map(),
      q2: new Map(),
    });
  }

  addSubscription(clientId: string, sub: SubscriptionRecord): void {
    this.#batch().of(clientId).subs.set(sub.filter, JSON.stringify(sub));
  }

  removeSubscription(clientId: string, filter: string): void {
    this.#batch().of(clientId).subs.set(filter, null);
  }

  putOutbound(clientId: string, entry: OutboundEntry): void {
    this.#batch().of(clientId).out.set(entry.seq, encodeEntry(entry));
  }

  removeOutbound(clientId: string, seq: number): void {
    this.#batch().of(clientId).out.set(seq, null);
  }

  addInboundQos2(clientId: string, packetId: number): void {
    this.#batch().of(clientId).q2.set(packetId, true);
  }

  removeInboundQos2(clientId: string, packetId: number): void {
    this.#batch().of(clientId).q2.set(packetId, false);
  }

  setRetained(topic: string, message: StoredMessage | null): void {
    this.#batch().retained.set(topic, message ? encodeMessage(message) : null);
  }

  // ------------------------------------------------------------------ commits

  flush(): Promise<void> {
    if (this.#closed && !this.#redis) return Promise.reject(new Error("the Redis store is closed"));
    if (this.#pending.empty && this.#retry.length === 0) return this.#committing ?? RESOLVED;
    if (!this.#next) {
      const before = this.#committing ?? RESOLVED;
      this.#next = before.catch(() => {}).then(() => {
        this.#next = null;
        return this.#commit();
      });
    }
    return this.#next;
  }

  /** Resolves once everything issued so far is written, retrying failed commits. */
  async #drain(): Promise<void> {
    for (let i = 0;; i++) {
      try {
        await this.flush();
        if (this.#pending.empty && this.#retry.length === 0 && !this.#committing) return;
      } catch (e) {
        if (i >= 50) throw e;
        await sleep(Math.min(100 * 2 ** i, MAX_RETRY_MS));
      }
    }
  }

  #commit(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batches = [...this.#retry, this.#pending];
    this.#retry = [];
    this.#pending = new Batch();
    const generation = this.#generation;
    const started = performance.now();
    const p = this.#send(batches).then(() => {
      this.#stats.commits++;
      this.#stats.commitMs += performance.now() - started;
      if (this.#failures > 0) {
        this.#log.info(`store: Redis writes work again after ${this.#failures} failed commit(s)`);
        this.#failures = 0;
      }
    }, (err) => {
      if (isFenced(err)) this.#fence?.refused?.((err as Error).message);
      this.#stats.failedCommits++;
      this.#failures++;
      this.#lastFailure = `Redis commit failed: ${(err as Error)?.message ?? err}`;
      // Older than anything issued since: retried first, under the newer mutations (unless
      // they were discarded meanwhile: this node was fenced).
      if (generation === this.#generation) this.#retry = batches.concat(this.#retry);
      const delay = Math.min(50 * 2 ** Math.min(this.#failures, 10), MAX_RETRY_MS);
      if (this.#failures === 1 || this.#failures % 20 === 0) {
        this.#log.error(
          `store: Redis commit failed (${this.#failures} in a row), retrying in ${delay} ms: ` +
            `${(err as Error)?.message ?? err}`,
        );
      }
      if (!this.#closed) {
        clearTimeout(this.#timer);
        this.#timer = setTimeout(() => this.#autoCommit(), delay);
      }
      throw err;
    });
    this.#committing = p;
    const clear = () => {
      if (this.#committing === p) this.#committing = null;
    };
    p.then(clear, clear);
    return p;
  }

  /** Groups every command by slot group: one MULTI each (all in one MULTI on a single server). */
  async #send(batches: Batch[]): Promise<void> {
    const groups = buildCommands(batches, this.keys);
    if (groups.size === 0) return;
    const redis = this.redis;
    const fence = this.#fence;
    if (fence) {
      // A lease that lapsed by the local clock is renewed (or found fenced) before writing.
      const epoch = await fence.valid();
      if (!this.cluster) {
        // One script: the epoch check and every write, atomically.
        const all: [string, ...unknown[]][] = [];
        for (const cmds of groups.values()) {
          for (const c of cmds) all.push(c[0] === "eval" ? ["synctl", ...c.slice(3)] : c);
        }
        await evalScript(redis, FENCED_APPLY, [fence.key], [epoch, ...applyArgs(all)]);
        return;
      }
      // Redis Cluster: the epoch lives in another slot than the sessions, so it is checked one
      // round trip before the per-slot transactions (docs/cluster.md).
      await evalScript(redis, EPOCH_CHECK, [fence.key], [epoch]);
    }
    if (!this.cluster) {
      const m = redis.multi();
      for (const cmds of groups.values()) for (const c of cmds) addCommand(m, c);
      checkExec(await m.exec());
      return;
    }
    // Redis Cluster: one MULTI per slot group, all sent in the same tick (auto-pipelined).
    await Promise.all(
      [...groups.values()].map(async (cmds) => {
        const m = redis.multi();
        for (const c of cmds) addCommand(m, c);
        checkExec(await m.exec());
      }),
    );
  }

  async deleteExpiredSessions(now: number): Promise<string[]> {
    // Pending saves must reach Redis first, or a session saved just now would be missed.
    await this.#drain();
    const redis = this.redis;
    const K = this.keys;
    const expired: string[] = [];
    while (true) {
      const ids = await redis.zrangebyscore(K.expiry, "-inf", now, "LIMIT", 0, 500);
      if (ids.length === 0) break;
      const results = await Promise.all(
        ids.map((id) => evalScript(redis, DELETE_IF_EXPIRED, K.session(id), [now])),
      );
      const m = redis.multi();
      ids.forEach((id, i) => {
        const r = results[i];
        if (r === 1) {
          expired.push(id);
          m.zrem(K.expiry, id).srem(K.sessions, id);
        } else if (r === -1) m.zrem(K.expiry, id); // connected or never expiring now
        else m.zadd(K.expiry, Number(r), id); // saved again with a later deadline
      });
      checkExec(await m.exec());
      if (ids.length < 500) break;
    }
    if (expired.length > 0) this.#log.info(`store: deleted ${expired.length} expired session(s)`);
    return expired;
  }
}

function addCommand(m: ChainableCommander, c: [string, ...unknown[]]): void {
  const [name, ...args] = c;
  // deno-lint-ignore no-explicit-any
  (m as any)[name](...args);
}
