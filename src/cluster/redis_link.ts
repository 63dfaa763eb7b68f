/**
 * ClusterLink over Redis: several broker nodes sharing one Redis (or Redis Cluster) act as one
 * broker. See docs/cluster.md for the design and the failure cases.
 *
 * Redis data (prefix P; `{g}` keys share one slot so they can be updated atomically together):
 *   P {g}:nodes             set of node ids that joined and were not yet taken over
 *   P {g}:alive:<node>      heartbeat: instance token, with a TTL of node-timeout
 *   P {g}:routes:<node>     set of filters the node has local subscribers for
 *   P {g}:holder            hash client id -> node holding the session (connected or offline)
 *   P {g}:held:<node>       set of client ids the node holds (taken over when it dies)
 *   P {g}:adopt:<node>      election lock (SET NX) of the node taking over a dead node
 *   P stream:{<node>}       QoS 1/2 messages forwarded to the node (consumer group "mqttwk")
 * Channels: P ch:routes (route add/remove/reload events), P ch:retained, P ch:nodes (a node was
 * taken over), P ch:node:<node>:m (QoS 0 messages), P ch:node:<node>:c (control: release).
 */
import type { Buffer } from "node:buffer";
import type { ClusterHost, ClusterLink, KeptWill } from "../broker/ports/cluster.ts";
import { TopicTree } from "../broker/topic_tree.ts";
import { decodeMessage, decodeValue, encodeMessage, encodeValue } from "../store/redis_codec.ts";
import { createRedis, describeRedis, type RedisClient } from "../store/redis_conn.ts";
import { evalScript, RedisStore, withTimeout } from "../store/redis.ts";
import type { StoredMessage } from "../broker/model.ts";

export interface RedisClusterLinkOptions {
  /** Milliseconds without a heartbeat after which a node counts as dead (default 5000). */
  nodeTimeoutMs?: number;
  /** Approximate cap on entries in one node's stream (default 100000). */
  streamMaxLen?: number;
  /** How long acquireSession waits for the holder to release (default nodeTimeoutMs). */
  releaseTimeoutMs?: number;
  /** Message ids remembered for duplicate suppression (default 100000). */
  recentIds?: number;
}

const GROUP = "mqttwk";
const READ_COUNT = 512;

/** Claims `id` for ARGV[2]; returns the previous holder. KEYS: holder, held:<me>. */
const CLAIM = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return old`;

/** Claims `id` only if nobody (or ARGV[2]) holds it; returns the holder afterwards. */
const CLAIM_IF_FREE = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old and old ~= ARGV[2] then return old end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return ARGV[2]`;

/** Moves `id` from dead ARGV[2] to ARGV[3] if ARGV[2] still holds it. KEYS: holder, held:<me>. */
const CLAIM_FROM = `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
return 1`;

/** Forgets `id` if ARGV[2] holds it. KEYS: holder, held:<me>. */
const RELEASE_IF_MINE = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('SREM', KEYS[2], ARGV[1])
return 1`;

/** Heartbeat. KEYS: alive, nodes. 1 = refreshed, 2 = was missing (re-set), 0 = another owner. */
const HEARTBEAT = `
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
if v then return 1 end
return 2`;

/** Deletes the heartbeat if it is ours. */
const LEAVE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`;

type StreamEntry = [Buffer, Buffer[]];

export class RedisClusterLink implements ClusterLink {
  readonly store: RedisStore;
  readonly nodeTimeoutMs: number;
  readonly streamMaxLen: number;
  readonly releaseTimeoutMs: number;
  #recentMax: number;

  #host: ClusterHost | null = null;
  #me = "";
  #token = crypto.randomUUID();
  #cmd: RedisClient | null = null;
  #sub: RedisClient | null = null;
  #reader: RedisClient | null = null;
  #stopped = false;
  #timers: ReturnType<typeof setInterval>[] = [];
  #readLoop: Promise<void> | null = null;

  /** Remote routes: owner = node id. */
  #trie = new TopicTree<true>();
  #routes = new Map<string, Set<string>>();
  /** Filters with local subscribers, as announced. */
  #local = new Set<string>();
  #routeOps = new Set<Promise<unknown>>();
  /** Sessions this node holds in Redis, with the time it claimed them. */
  #held = new Map<string, number>();
  #acquiring = new Map<string, { lost: boolean }>();
  #releases = new Map<string, () => void>();
  #retainedTopics = new Set<string>();
  /**
   * One set per retained reload in progress: the topics that changed live (here or on a peer)
   * while its snapshot was being read. The snapshot may predate those changes, so it must not
   * undo them.
   */
  #retainedReloads = new Set<Set<string>>();
  /** The same for route snapshots: "node\nfilter" -> announced (true) or withdrawn (false). */
  #routeReloads = new Set<Map<string, boolean>>();
  /** Recently delivered message ids, with the order in which they were first seen. */
  #recent = new Map<string, number>();
  #seenCount = 0;
  #recentRing: string[] = [];
  #recentPos = 0;
  #missingSince = new Map<string, number>();
  #takingOver = new Set<string>();
  #healthy = false;
  #healthySince = 0;
  #degradedLogged = false;
  #reconciling: Promise<void> | null = null;

  constructor(store: RedisStore, opts: RedisClusterLinkOptions = {}) {
    this.store = store;
    this.nodeTimeoutMs = opts.nodeTimeoutMs ?? 5000;
    this.streamMaxLen = opts.streamMaxLen ?? 100_000;
    this.releaseTimeoutMs = opts.releaseTimeoutMs ?? this.nodeTimeoutMs;
    this.#recentMax = opts.recentIds ?? 100_000;
  }

  // ------------------------------------------------------------------ keys

  #g(name: string): string {
    return this.store.keys.global(name);
  }
  #stream(node: string): string {
    return `${this.store.keys.prefix}stream:{${node}}`;
  }
  #ch(name: string): string {
    return `${this.store.keys.prefix}ch:${name}`;
  }
  get #heartbeatMs(): number {
    return Math.max(100, Math.floor(this.nodeTimeoutMs / 5));
  }

  /** Nodes this node currently forwards to for `topic` (tests, diagnostics). */
  routesFor(topic: string): string[] {
    const out = new Set<string>();
    this.#trie.match(topic, (n) => out.add(n));
    return [...out];
  }

  /** Known remote nodes with their filters (tests, diagnostics). */
  routeTable(): Map<string, string[]> {
    return new Map([...this.#routes].map(([n, s]) => [n, [...s]]));
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  // ------------------------------------------------------------------ lifecycle

  async start(host: ClusterHost): Promise<void> {
    this.#host = host;
    this.#me = host.nodeId;
    const log = host.log;
    const where = describeRedis(this.store.options);
    const opts = this.store.options;
    const cmd = createRedis(opts, { name: `mqttwk-cluster-${this.#me}` });
    const sub = createRedis(opts, { name: `mqttwk-sub-${this.#me}`, autoPipelining: false });
    const reader = createRedis(opts, { name: `mqttwk-reader-${this.#me}`, autoPipelining: false });
    this.#cmd = cmd;
    this.#sub = sub;
    this.#reader = reader;
    for (const c of [sub, reader]) c.on("error", () => {});
    cmd.on("error", (err: Error) => this.#degraded(`${where} unreachable: ${err.message}`));
    cmd.on("close", () => this.#degraded(`connection to ${where} lost`));
    try {
      await withTimeout(
        Promise.all([cmd.connect(), sub.connect(), reader.connect()]),
        10_000,
        where,
      );
    } catch (e) {
      this.#disconnectAll();
      throw new Error(`cluster: cannot reach ${where}: ${(e as Error).message}`, { cause: e });
    }
    this.#healthy = true;
    this.#healthySince = Date.now();

    // A live node with the same id keeps refreshing its heartbeat; a crashed earlier run of this
    // node stops doing so, and its key expires within node-timeout.
    const alive = this.#g(`alive:${this.#me}`);
    const deadline = Date.now() + this.nodeTimeoutMs + 500;
    while (true) {
      const ok = await cmd.set(alive, this.#token, "PX", this.nodeTimeoutMs, "NX");
      if (ok) break;
      if (Date.now() > deadline) {
        this.#disconnectAll();
        throw new Error(
          `node id "${this.#me}" is already in use by another live node (its heartbeat in ` +
            `${where} keeps being refreshed). Give every node a unique mqttwk.broker.node-id.`,
        );
      }
      await sleep(Math.min(200, this.#heartbeatMs));
    }
    // A node taking over an earlier run of this node finishes first.
    const lock = this.#g(`adopt:${this.#me}`);
    for (let i = 0; i < 300 && (await cmd.exists(lock)); i++) await sleep(100);

    sub.on("messageBuffer", (ch: Buffer, msg: Buffer) => this.#onMessage(ch.toString(), msg));
    await sub.subscribe(
      this.#ch("routes"),
      this.#ch("retained"),
      this.#ch("nodes"),
      this.#ch(`node:${this.#me}:m`),
      this.#ch(`node:${this.#me}:c`),
    );
    sub.on("ready", () => {
      if (!this.#stopped) this.#reloadAll().catch((e) => log.warn(`cluster: reload: ${e}`));
    });
    cmd.on("ready", () => this.#onReady());

    await this.#ensureGroup(this.#me);
    await cmd.persist(this.#stream(this.#me));
    await cmd.sadd(this.#g("nodes"), this.#me);
    // Routes of an earlier run are stale; sessions it held are resumed offline here.
    await cmd.del(this.#g(`routes:${this.#me}`));
    for (const f of host.localRoutes()) this.#local.add(f);
    if (this.#local.size) await cmd.sadd(this.#g(`routes:${this.#me}`), ...this.#local);
    await cmd.publish(this.#ch("routes"), `R\n${this.#me}`);
    await this.#reloadAll();
    // Sessions and clients of an earlier run of this node that crashed: their wills are due, and
    // are published only now that the routes to other nodes' subscribers are known.
    await this.#adoptSessionsOf(this.#me);
    await this.#publishWillsOf(this.#me);

    this.#timers.push(setInterval(() => this.#beat(), this.#heartbeatMs));
    this.#timers.push(setInterval(() => this.#checkNodes(), this.#heartbeatMs));
    this.#timers.push(setInterval(() => this.#cleanupHeld(), 5000));
    this.#timers.push(setInterval(() => {
      if (this.#healthy) this.#reloadAll().catch(() => {});
    }, 30_000));
    this.#readLoop = this.#read();
    log.info(
      `cluster: node ${this.#me} joined via ${where} (${this.#routes.size} other node(s) known, ` +
        `node timeout ${this.nodeTimeoutMs} ms)`,
    );
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    const cmd = this.#cmd;
    try {
      // Offline sessions are taken over by another node: their state must be in Redis first.
      await withTimeout(this.store.flush(), 5000, "flushing the store");
      if (cmd && this.#healthy) {
        await withTimeout(Promise.all(this.#routeOps), 2000, "route updates").catch(() => {});
        await withTimeout(
          evalScript(cmd, LEAVE, [this.#g(`alive:${this.#me}`)], [this.#token]),
          2000,
          "leaving",
        );
      }
    } catch (e) {
      this.#host?.log.warn(`cluster: leaving uncleanly: ${(e as Error).message}`);
    }
    this.#reader?.disconnect();
    await this.#readLoop?.catch(() => {});
    this.#disconnectAll(true);
    this.#host?.log.info(`cluster: node ${this.#me} left; another node takes over its sessions`);
  }

  #disconnectAll(graceful = false): void {
    for (const c of [this.#cmd, this.#sub, this.#reader]) {
      if (!c) continue;
      if (graceful) c.quit().catch(() => c.disconnect());
      else c.disconnect();
    }
  }

  #degraded(why: string): void {
    if (this.#stopped) return;
    this.#healthy = false;
    if (!this.#degradedLogged) {
      this.#degradedLogged = true;
      this.#host?.log.warn(
        `cluster: degraded: ${why}; serving local clients only, retrying with backoff`,
      );
    }
  }

  #onReady(): void {
    if (this.#stopped) return;
    const wasDown = this.#degradedLogged;
    this.#healthy = true;
    this.#healthySince = Date.now();
    this.#missingSince.clear();
    if (!wasDown) return;
    this.#degradedLogged = false;
    this.#host?.log.info("cluster: Redis reachable again; re-announcing routes and sessions");
    this.#reconcile();
  }

  /** After an outage: heartbeat, routes, held sessions, consumer group, route table, retained. */
  #reconcile(): void {
    if (this.#reconciling) return;
    const run = async () => {
      const cmd = this.#cmd!;
      const host = this.#host!;
      await this.#beat();
      const routesKey = this.#g(`routes:${this.#me}`);
      this.#local = new Set(host.localRoutes());
      const m = cmd.multi().del(routesKey);
      if (this.#local.size) m.sadd(routesKey, ...this.#local);
      await m.exec();
      await cmd.publish(this.#ch("routes"), `R\n${this.#me}`);
      await this.#ensureGroup(this.#me);
      for (const id of host.localSessions()) {
        const holder = await evalScript(cmd, CLAIM_IF_FREE, this.#heldKeys(), [id, this.#me]);
        if (holder === this.#me) {
          if (!this.#held.has(id)) this.#held.set(id, Date.now());
        } else {
          host.log.warn(
            `cluster: session ${id} was taken over by node ${holder} during the outage; ` +
              `releasing it here`,
          );
          this.#held.delete(id);
          await host.releaseSession(id);
        }
      }
      await this.#reloadAll();
    };
    this.#reconciling = run().catch((e) =>
      this.#host?.log.warn(`cluster: reconcile failed, will retry: ${e?.message ?? e}`)
    ).finally(() => {
      this.#reconciling = null;
    });
  }

  #heldKeys(node = this.#me): string[] {
    return [this.#g("holder"), this.#g(`held:${node}`)];
  }

  // ------------------------------------------------------------------ routes

  routeAdded(filter: string): Promise<void> {
    this.#local.add(filter);
    return this.#routeOp(async (cmd) => {
      await cmd.sadd(this.#g(`routes:${this.#me}`), filter);
      await cmd.publish(this.#ch("routes"), `+\n${this.#me}\n${filter}`);
    });
  }

  routeRemoved(filter: string): Promise<void> {
    this.#local.delete(filter);
    return this.#routeOp(async (cmd) => {
      await cmd.srem(this.#g(`routes:${this.#me}`), filter);
      await cmd.publish(this.#ch("routes"), `-\n${this.#me}\n${filter}`);
    });
  }

  #routeOp(fn: (cmd: RedisClient) => Promise<void>): Promise<void> {
    const cmd = this.#cmd;
    if (!cmd || this.#stopped) return Promise.resolve();
    // Never rejects: after an outage the whole set is re-announced anyway.
    const p = fn(cmd).catch(() => {});
    this.#routeOps.add(p);
    p.finally(() => this.#routeOps.delete(p));
    return p;
  }

  /**
   * Replaces what `node` routes. `live` holds the route changes announced while `filters` was
   * being read ("node\nfilter" -> present): they are newer than the snapshot and win over it.
   */
  #setRoutes(node: string, filters: Iterable<string>, live?: Map<string, boolean>): void {
    const old = this.#routes.get(node);
    if (old) { for (const f of old) this.#trie.remove(f, node); }
    const set = new Set(filters);
    if (live) {
      const prefix = `${node}\n`;
      for (const [key, present] of live) {
        if (!key.startsWith(prefix)) continue;
        const f = key.slice(prefix.length);
        if (present) set.add(f);
        else set.delete(f);
      }
    }
    if (set.size === 0) this.#routes.delete(node);
    else this.#routes.set(node, set);
    for (const f of set) this.#trie.add(f, node, true);
  }

  #addRoute(node: string, filter: string): void {
    for (const live of this.#routeReloads) live.set(`${node}\n${filter}`, true);
    let set = this.#routes.get(node);
    if (!set) this.#routes.set(node, set = new Set());
    set.add(filter);
    this.#trie.add(filter, node, true);
  }

  #removeRoute(node: string, filter: string): void {
    for (const live of this.#routeReloads) live.set(`${node}\n${filter}`, false);
    const set = this.#routes.get(node);
    if (!set?.delete(filter)) return;
    if (set.size === 0) this.#routes.delete(node);
    this.#trie.remove(filter, node);
  }

  /** Reads route snapshots with `read`, noting the live route changes meanwhile. */
  async #readRoutes<T>(read: () => Promise<T>): Promise<[T, Map<string, boolean>]> {
    const live = new Map<string, boolean>();
    this.#routeReloads.add(live);
    try {
      return [await read(), live];
    } finally {
      this.#routeReloads.delete(live);
    }
  }

  async #reloadRoutes(node: string): Promise<void> {
    const [filters, live] = await this.#readRoutes(() =>
      this.#cmd!.smembers(this.#g(`routes:${node}`))
    );
    this.#setRoutes(node, filters, live);
  }

  async #reloadAll(): Promise<void> {
    const cmd = this.#cmd!;
    const [[nodes, tables], live] = await this.#readRoutes(async () => {
      const nodes = (await cmd.smembers(this.#g("nodes"))).filter((n) => n !== this.#me);
      return [nodes, await Promise.all(nodes.map((n) => cmd.smembers(this.#g(`routes:${n}`))))];
    });
    for (const n of [...this.#routes.keys()]) if (!nodes.includes(n)) this.#setRoutes(n, [], live);
    nodes.forEach((n, i) => this.#setRoutes(n, tables[i], live));
    await this.#reloadRetained();
  }

  async #reloadRetained(): Promise<void> {
    const host = this.#host!;
    const touched = new Set<string>();
    this.#retainedReloads.add(touched);
    let all;
    try {
      all = await this.store.loadRetained();
    } finally {
      this.#retainedReloads.delete(touched);
    }
    const now = new Set<string>();
    for (const m of all) {
      if (touched.has(m.topic)) continue;
      now.add(m.topic);
      host.retainedFromPeer(m.topic, m);
    }
    for (const t of this.#retainedTopics) {
      if (touched.has(t)) now.add(t);
      else if (!now.has(t)) host.retainedFromPeer(t, null);
    }
    this.#retainedTopics = now;
  }

  /** A retained message set or deleted live: newer than any snapshot being read now. */
  #retainedLive(topic: string, present: boolean): void {
    if (present) this.#retainedTopics.add(topic);
    else this.#retainedTopics.delete(topic);
    for (const touched of this.#retainedReloads) touched.add(topic);
  }

  // ------------------------------------------------------------------ messages

  forward(msg: StoredMessage): void | Promise<void> {
    const cmd = this.#cmd;
    if (!cmd || this.#stopped) return;
    let targets: string[] | null = null;
    this.#trie.match(msg.topic, (node) => {
      if (node === this.#me) return;
      if (!targets) targets = [node];
      else if (!targets.includes(node)) targets.push(node);
    });
    if (!targets) return;
    const blob = encodeMessage(msg);
    if (msg.qos === 0) {
      for (const n of targets as string[]) {
        cmd.publish(this.#ch(`node:${n}:m`), blob).catch(() => {});
      }
      return;
    }
    const max = this.streamMaxLen;
    const adds = (targets as string[]).map((n) =>
      cmd.xadd(this.#stream(n), "MAXLEN", "~", max, "*", "m", blob)
    );
    return adds.length === 1 ? adds[0].then(() => {}) : Promise.all(adds).then(() => {});
  }

  #seen(id: string): boolean {
    if (this.#recent.has(id)) return true;
    this.#recent.set(id, ++this.#seenCount);
    if (this.#recentRing.length < this.#recentMax) this.#recentRing.push(id);
    else {
      this.#recent.delete(this.#recentRing[this.#recentPos]);
      this.#recentRing[this.#recentPos] = id;
      this.#recentPos = (this.#recentPos + 1) % this.#recentMax;
    }
    return false;
  }

  async #ensureGroup(node: string): Promise<void> {
    try {
      await this.#cmd!.xgroup("CREATE", this.#stream(node), GROUP, "0", "MKSTREAM");
    } catch (e) {
      if (!String((e as Error).message).includes("BUSYGROUP")) throw e;
    }
  }

  /** Reads (without blocking) and delivers whatever is waiting unread in this node's stream. */
  async #drainOwn(): Promise<void> {
    await this.#deliverUnread(this.#cmd!, this.#stream(this.#me), -1);
  }

  /** Reads (without blocking) and delivers every unread entry of `key`; returns how many. */
  async #deliverUnread(cmd: RedisClient, key: string, after: number): Promise<number> {
    let count = 0;
    // Bounded: a stream written faster than it is read must not hold a release forever.
    for (let round = 0; round < 1000; round++) {
      const res = await callBuffer(
        cmd,
        "XREADGROUP",
        "GROUP",
        GROUP,
        this.#me,
        "COUNT",
        READ_COUNT,
        "STREAMS",
        key,
        ">",
      ) as [Buffer, StreamEntry[]][] | null;
      const entries = res?.[0]?.[1] ?? [];
      if (entries.length === 0) break;
      await this.#deliverEntries(key, entries, after);
      count += entries.length;
    }
    return count;
  }

  /** Own stream: pending entries of an earlier run first, then new ones; ack after durability. */
  async #read(): Promise<void> {
    const reader = this.#reader!;
    const key = this.#stream(this.#me);
    let from = "0";
    let failures = 0;
    while (!this.#stopped) {
      try {
        const args: (string | number)[] = ["GROUP", GROUP, this.#me, "COUNT", READ_COUNT];
        if (from === ">") args.push("BLOCK", 1000);
        args.push("STREAMS", key, from);
        const res = await reader.callBuffer("XREADGROUP", ...args) as
          | [Buffer, StreamEntry[]][]
          | null;
        failures = 0;
        const entries = res?.[0]?.[1] ?? [];
        if (from === "0" && entries.length === 0) {
          from = ">";
          continue;
        }
        if (entries.length === 0) continue;
        await this.#deliverEntries(key, entries, -1);
      } catch (e) {
        if (this.#stopped) return;
        const text = String((e as Error)?.message ?? e);
        if (text.includes("NOGROUP")) {
          await this.#ensureGroup(this.#me).catch(() => {});
          from = "0";
          continue;
        }
        failures++;
        if (failures === 1) this.#host?.log.warn(`cluster: reading own stream: ${text}`);
        await sleep(Math.min(50 * 2 ** Math.min(failures, 6), 2000));
      }
    }
  }

  /**
   * Delivers stream entries locally, then acknowledges them. `after`: skip only ids first seen
   * after that mark (when the sessions they were meant for were already here); own stream: -1.
   */
  async #deliverEntries(key: string, entries: StreamEntry[], after: number): Promise<void> {
    const host = this.#host!;
    const ids: string[] = [];
    for (const [id, fields] of entries) {
      ids.push(id.toString());
      if (!fields) continue; // deleted by trimming
      for (let i = 0; i + 1 < fields.length; i += 2) {
        if (fields[i].toString() !== "m") continue;
        let msg: StoredMessage;
        try {
          msg = decodeMessage(fields[i + 1]);
        } catch (e) {
          host.log.warn(`cluster: undecodable stream entry ${id}: ${e}`);
          continue;
        }
        const first = this.#recent.get(msg.id);
        if (first === undefined) this.#seen(msg.id);
        else if (after < 0 || first > after) continue;
        host.deliverFromPeer(msg);
      }
    }
    // Queue entries for persistent sessions must be durable before the stream forgets them.
    await this.store.flush();
    await this.#cmd!.multi().xack(key, GROUP, ...ids).xdel(key, ...ids).exec();
  }

  #onMessage(channel: string, data: Buffer): void {
    if (this.#stopped) return;
    const host = this.#host!;
    const p = this.store.keys.prefix;
    try {
      if (channel === `${p}ch:node:${this.#me}:m`) {
        const msg = decodeMessage(data);
        if (!this.#seen(msg.id)) host.deliverFromPeer(msg);
      } else if (channel === `${p}ch:routes`) {
        const [op, node, ...rest] = data.toString().split("\n");
        if (node === this.#me) return;
        const filter = rest.join("\n");
        if (op === "+") this.#addRoute(node, filter);
        else if (op === "-") this.#removeRoute(node, filter);
        else if (op === "R") this.#reloadRoutes(node).catch(() => {});
      } else if (channel === `${p}ch:retained`) {
        const v = decodeValue<{ topic: string; from: string; msg: StoredMessage | null }>(data);
        if (v.from === this.#me) return;
        this.#retainedLive(v.topic, !!v.msg);
        host.retainedFromPeer(v.topic, v.msg);
      } else if (channel === `${p}ch:nodes`) {
        const [op, node] = data.toString().split("\n");
        if (op === "gone" && node !== this.#me) {
          this.#setRoutes(node, []);
          this.#missingSince.delete(node);
        }
      } else if (channel === `${p}ch:node:${this.#me}:c`) {
        const c = JSON.parse(data.toString()) as {
          t: string;
          id: string;
          from: string;
          req: string;
        };
        if (c.t === "release") this.#onReleaseRequest(c.id, c.from, c.req);
        else if (c.t === "released") this.#releases.get(c.req)?.();
      }
    } catch (e) {
      host.log.warn(`cluster: bad message on ${channel}: ${(e as Error).message}`);
    }
  }

  retainedChanged(topic: string, msg: StoredMessage | null): void {
    this.#retainedLive(topic, msg !== null);
    this.#cmd?.publish(this.#ch("retained"), encodeValue({ topic, from: this.#me, msg }))
      .catch(() => {});
  }

  // ------------------------------------------------------------------ sessions

  async acquireSession(clientId: string): Promise<void> {
    const cmd = this.#cmd!;
    const state = { lost: false };
    this.#acquiring.set(clientId, state);
    try {
      // The holder releases it; a dead (or unresponsive) holder is first taken over by a survivor,
      // which queues what the dead node's stream still held into the session; then that survivor
      // releases it to us.
      for (let round = 0; round < 4; round++) {
        const old = await cmd.hget(this.#g("holder"), clientId);
        if (!old || old === this.#me) break;
        const alive = await cmd.exists(this.#g(`alive:${old}`));
        if (alive && (await this.#requestRelease(old, clientId))) break;
        if (!(await this.#awaitTakeover(old))) break;
      }
      await evalScript(cmd, CLAIM, this.#heldKeys(), [clientId, this.#me]);
      this.#held.set(clientId, Date.now());
      if (state.lost) {
        throw new Error(`session ${clientId} was taken over by another node meanwhile`);
      }
    } finally {
      this.#acquiring.delete(clientId);
    }
  }

  /** Waits until a dead node has been taken over; false if that did not happen in time. */
  async #awaitTakeover(node: string): Promise<boolean> {
    const cmd = this.#cmd!;
    const end = Date.now() + 8 * this.nodeTimeoutMs + 5000;
    while (Date.now() < end && !this.#stopped) {
      const [member, lock] = await Promise.all([
        cmd.sismember(this.#g("nodes"), node),
        cmd.get(this.#g(`adopt:${node}`)),
      ]);
      if (!member) return true;
      if (!lock && (await cmd.exists(this.#g(`alive:${node}`)))) return true; // back alive
      await sleep(Math.min(100, this.#heartbeatMs));
    }
    this.#host?.log.warn(`cluster: node ${node} was not taken over in time; proceeding`);
    return false;
  }

  async #requestRelease(node: string, clientId: string): Promise<boolean> {
    const req = crypto.randomUUID();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#releases.set(req, resolve);
    try {
      await this.#cmd!.publish(
        this.#ch(`node:${node}:c`),
        JSON.stringify({ t: "release", id: clientId, from: this.#me, req }),
      );
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<"timeout">((r) => {
        timer = setTimeout(() => r("timeout"), this.releaseTimeoutMs);
      });
      const r = await Promise.race([promise, timedOut]);
      clearTimeout(timer);
      if (r === "timeout") {
        this.#host?.log.warn(
          `cluster: node ${node} did not release session ${clientId} within ` +
            `${this.releaseTimeoutMs} ms`,
        );
        return false;
      }
      return true;
    } finally {
      this.#releases.delete(req);
    }
  }

  async #onReleaseRequest(clientId: string, from: string, req: string): Promise<void> {
    const host = this.#host!;
    const acquiring = this.#acquiring.get(clientId);
    if (acquiring) acquiring.lost = true;
    try {
      // Messages already queued for this node in its stream (e.g. published while the session
      // was offline) must reach the session before it moves, or they would arrive after it left.
      await this.#drainOwn().catch((e) =>
        host.log.warn(`cluster: draining own stream before releasing ${clientId}: ${e}`)
      );
      await host.releaseSession(clientId);
    } catch (e) {
      host.log.warn(`cluster: releasing ${clientId}: ${(e as Error).message}`);
    }
    this.#held.delete(clientId);
    const cmd = this.#cmd!;
    await cmd.srem(this.#g(`held:${this.#me}`), clientId).catch(() => {});
    await cmd.publish(this.#ch(`node:${from}:c`), JSON.stringify({ t: "released", req }))
      .catch(() => {});
  }

  /** Forgets in Redis the sessions this node no longer holds (ended, expired, released). */
  async #cleanupHeld(): Promise<void> {
    if (!this.#healthy || this.#stopped) return;
    const host = this.#host!;
    const local = new Set(host.localSessions());
    const now = Date.now();
    for (const id of local) if (!this.#held.has(id)) this.#held.set(id, now);
    for (const [id, since] of this.#held) {
      if (local.has(id) || this.#acquiring.has(id) || now - since < 10_000) continue;
      this.#held.delete(id);
      await evalScript(this.#cmd!, RELEASE_IF_MINE, this.#heldKeys(), [id, this.#me]).catch(
        () => {},
      );
    }
  }

  // ------------------------------------------------------------------ liveness

  async #beat(): Promise<void> {
    if (this.#stopped || !this.#cmd) return;
    try {
      const r = await evalScript(
        this.#cmd,
        HEARTBEAT,
        [this.#g(`alive:${this.#me}`), this.#g("nodes")],
        [this.#token, this.nodeTimeoutMs, this.#me],
      );
      if (r === 0) {
        this.#host?.log.error(
          `cluster: another live process uses node id "${this.#me}"; every node needs a ` +
            `unique mqttwk.broker.node-id (messages for this id are split between them)`,
        );
      }
    } catch { /* degraded: logged by the connection */ }
  }

  async #checkNodes(): Promise<void> {
    if (this.#stopped || !this.#healthy) return;
    const cmd = this.#cmd!;
    let nodes: string[];
    let alive: number[];
    try {
      nodes = (await cmd.smembers(this.#g("nodes"))).filter((n) => n !== this.#me);
      if (nodes.length === 0) return;
      const m = cmd.multi();
      for (const n of nodes) m.exists(this.#g(`alive:${n}`));
      const res = await m.exec();
      alive = (res ?? []).map(([, v]) => v as number);
    } catch {
      return;
    }
    const now = Date.now();
    // Right after (re)connecting, give every node one timeout to renew its heartbeat.
    const settled = now - this.#healthySince >= this.nodeTimeoutMs;
    nodes.forEach((n, i) => {
      if (alive[i]) {
        this.#missingSince.delete(n);
        return;
      }
      const since = this.#missingSince.get(n) ?? now;
      this.#missingSince.set(n, since);
      if (!settled || now - since < 2 * this.#heartbeatMs || this.#takingOver.has(n)) return;
      // Failsafe: nobody managed to take it over for a long time.
      if (now - since > 6 * this.nodeTimeoutMs) this.#setRoutes(n, []);
      this.#tryTakeOver(n);
    });
    for (const n of [...this.#routes.keys()]) if (!nodes.includes(n)) this.#setRoutes(n, []);
  }

  #tryTakeOver(dead: string): void {
    const cmd = this.#cmd!;
    const host = this.#host!;
    const lock = this.#g(`adopt:${dead}`);
    this.#takingOver.add(dead);
    (async () => {
      const won = await cmd.set(
        lock,
        this.#me,
        "PX",
        Math.max(30_000, 6 * this.nodeTimeoutMs),
        "NX",
      );
      if (!won) return;
      host.log.warn(`cluster: node ${dead} is dead; taking over its sessions and queued messages`);
      const adopted = await this.#adoptSessionsOf(dead);
      const wills = await this.#publishWillsOf(dead);
      // Copies first seen from now on reached the adopted sessions too: those are duplicates.
      const mark = this.#seenCount;
      await Promise.all(this.#routeOps);
      const drained = await this.#drainStream(dead, mark);
      const m = cmd.multi()
        .del(this.#g(`routes:${dead}`))
        .del(this.#g(`held:${dead}`))
        .srem(this.#g("nodes"), dead);
      await m.exec();
      await cmd.publish(this.#ch("nodes"), `gone\n${dead}`);
      this.#setRoutes(dead, []);
      host.log.info(
        `cluster: took over node ${dead}: ${adopted} session(s), ${drained} queued message(s), ` +
          `${wills} will(s) of clean-session clients`,
      );
      // Publishers learn of the death one heartbeat later at most: catch what they still sent.
      await sleep(2 * this.nodeTimeoutMs);
      if (this.#stopped) return;
      const late = await this.#drainStream(dead, mark);
      if (late) host.log.info(`cluster: ${late} late message(s) for dead node ${dead} delivered`);
      await cmd.pexpire(this.#stream(dead), 3_600_000);
      await cmd.del(lock);
    })().catch((e) => {
      host.log.warn(`cluster: taking over ${dead} failed: ${e?.message ?? e}; will retry`);
    }).finally(() => this.#takingOver.delete(dead));
  }

  keepWill(clientId: string, kept: KeptWill | null): void {
    const cmd = this.#cmd;
    if (!cmd) return;
    const key = this.#g(`wills:${this.#me}`);
    // Not awaited: queued by the client while Redis is away, and in order with later changes.
    const done = kept ? cmd.hset(key, clientId, encodeValue(kept)) : cmd.hdel(key, clientId);
    done.catch((e: Error) =>
      this.#host?.log.warn(`cluster: keeping the will of ${clientId} failed: ${e.message}`)
    );
  }

  /** Publishes the wills `node` still kept for its clean-session clients; returns how many. */
  async #publishWillsOf(node: string): Promise<number> {
    const cmd = this.#cmd!;
    const key = this.#g(`wills:${node}`);
    const kept = await cmd.hgetallBuffer(key);
    const ids = Object.keys(kept);
    for (const id of ids) {
      try {
        this.#host!.publishOrphanWill(id, decodeValue<KeptWill>(kept[id]));
      } catch (e) {
        this.#host!.log.warn(`cluster: will of ${id} from ${node} unreadable: ${e}`);
      }
    }
    // Published at least once: a crash right here publishes them again on the next takeover.
    if (ids.length > 0) await cmd.del(key);
    return ids.length;
  }

  /** Resumes offline here every session `node` held; returns how many. */
  async #adoptSessionsOf(node: string): Promise<number> {
    const cmd = this.#cmd!;
    const host = this.#host!;
    const ids = await cmd.smembers(this.#g(`held:${node}`));
    let n = 0;
    for (const id of ids) {
      const ok = await evalScript(cmd, CLAIM_FROM, this.#heldKeys(), [id, node, this.#me]);
      if (ok !== 1) continue;
      const loaded = await this.store.loadSession(id);
      if (!loaded) {
        await evalScript(cmd, RELEASE_IF_MINE, this.#heldKeys(), [id, this.#me]);
        continue;
      }
      this.#held.set(id, Date.now());
      host.adoptSession(loaded);
      n++;
    }
    await this.store.flush();
    return n;
  }

  /** Delivers everything left in a dead node's stream here; returns the count. */
  async #drainStream(node: string, after: number): Promise<number> {
    const cmd = this.#cmd!;
    const key = this.#stream(node);
    let count = 0;
    try {
      // Pending: read by the dead node but not acknowledged.
      let start = "0-0";
      while (true) {
        const res = await callBuffer(
          cmd,
          "XAUTOCLAIM",
          key,
          GROUP,
          this.#me,
          0,
          start,
          "COUNT",
          READ_COUNT,
        ) as [Buffer, StreamEntry[], Buffer[]];
        const entries = res[1] ?? [];
        if (entries.length) {
          await this.#deliverEntries(key, entries, after);
          count += entries.length;
        }
        start = res[0].toString();
        if (start === "0-0") break;
      }
    } catch (e) {
      if (!String((e as Error).message).includes("NOGROUP")) throw e;
      await this.#ensureGroup(node);
    }
    count += await this.#deliverUnread(cmd, key, after);
    return count;
  }
}

/** callBuffer through an explicit pipeline: auto-pipelining drops the command name of `call`. */
async function callBuffer(redis: RedisClient, ...args: (string | number)[]): Promise<unknown> {
  const [command, ...rest] = args;
  const res = await redis.pipeline().callBuffer(String(command), ...rest).exec();
  if (!res) throw new Error("Redis pipeline aborted");
  if (res[0][0]) throw res[0][0];
  return res[0][1];
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
