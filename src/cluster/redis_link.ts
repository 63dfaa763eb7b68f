/**
 * ClusterLink over Redis: several broker nodes sharing one Redis (or Redis Cluster) act as one
 * broker. See docs/cluster.md for the design and the failure cases. This class owns the Redis
 * connections and the link's health, and composes the parts that do the work:
 *   membership.ts  joining, heartbeats, leaving, noticing dead nodes
 *   takeover.ts    adopting a dead node's sessions, wills and queued messages
 *   sessions.ts    which node holds which session; moving a session on CONNECT
 *   routes.ts      the cluster's route table
 *   forwarding.ts  sending messages to the nodes that route them; de-duplication
 *   retained.ts    retained messages set on other nodes
 *   wills.ts       wills of clean-session clients, kept for survivors
 *   sys_stats.ts   every node's $SYS figures, for the cluster totals
 *   wire.ts        the one message format on every channel and stream
 *
 * Redis data (prefix P; `{g}` keys share one slot so they can be updated atomically together):
 *   P {g}:nodes             set of node ids that joined and were not yet taken over
 *   P {g}:alive:<node>      heartbeat: instance token, with a TTL of node-timeout
 *   P {g}:routes:<node>     set of filters the node has local subscribers for
 *   P {g}:holder            hash client id -> node holding the session (connected or offline)
 *   P {g}:held:<node>       set of client ids the node holds (taken over when it dies)
 *   P {g}:adopt:<node>      election lock (SET NX) of the node taking over a dead node
 *   P {g}:wills:<node>      hash client id -> kept will ("will" wire frame)
 *   P {g}:sys               hash node -> its latest $SYS figures (JSON, see sys_stats.ts)
 *   P stream:{<node>}       QoS 1/2 messages forwarded to the node (consumer group "mqttwk")
 * Channels: P ch:routes (route changes), P ch:retained, P ch:nodes (a node was taken over),
 * P ch:node:<node>:m (QoS 0 messages), P ch:node:<node>:c (control: session release).
 */
import type { Buffer } from "node:buffer";
import type { StoredMessage } from "../broker/model.ts";
import type {
  ClusterHost,
  ClusterLink,
  KeptWill,
  NodeSysStats,
  SharedSysStats,
} from "../broker/ports/cluster.ts";
import { sleep, withTimeout } from "../redis/commands.ts";
import {
  createRedis,
  describeRedis,
  ignoreErrors,
  type RedisClient,
  watchConnection,
} from "../redis/conn.ts";
import { DEFAULT_PREFIX, RedisKeys } from "../redis/keys.ts";
import { type ClusterStore, LinkContext } from "./context.ts";
import { Forwarder } from "./forwarding.ts";
import { subscribedTo } from "./stream_delivery.ts";
import { Membership } from "./membership.ts";
import { RetainedReplica } from "./retained.ts";
import { RouteTable } from "./routes.ts";
import { SessionHolder } from "./sessions.ts";
import { SysStatsBoard } from "./sys_stats.ts";
import { takeOver } from "./takeover.ts";
import { KeptWills } from "./wills.ts";
import { Lease } from "./lease.ts";
import { decodeFrames, type WireMessage } from "./wire.ts";

export type { ClusterStore } from "./context.ts";
/** Tuning of the link; every field has a default. */
export interface RedisClusterLinkOptions {
  /** Milliseconds without a heartbeat after which a node counts as dead (default 5000). */
  nodeTimeoutMs?: number;
  /** Approximate cap on entries in one node's stream (default 100000). */
  streamMaxLen?: number;
  /** How long acquireSession waits for the holder to release (default nodeTimeoutMs). */
  releaseTimeoutMs?: number;
  /** Most message ids remembered for duplicate suppression; the newest half always are (100000). */
  recentIds?: number;
}

/** The parts of a started link. */
interface Parts {
  ctx: LinkContext;
  membership: Membership;
  sessions: SessionHolder;
  routes: RouteTable;
  forwarder: Forwarder;
  retained: RetainedReplica;
  wills: KeptWills;
  sys: SysStatsBoard;
}

/** A ClusterLink whose nodes meet in Redis. */
export class RedisClusterLink implements ClusterLink {
  readonly store: ClusterStore;
  readonly nodeTimeoutMs: number;
  readonly streamMaxLen: number;
  readonly releaseTimeoutMs: number;
  readonly recentIds: number;

  #p: Parts | null = null;
  #clients: RedisClient[] = [];
  #reader: RedisClient | null = null;
  #timers: ReturnType<typeof setInterval>[] = [];
  #stopped = false;
  #degraded = false;
  #reconciling: Promise<void> | null = null;
  /** How long the lease had lapsed when that was noticed (null: it holds). */
  #lapsedAt: number | null = null;

  constructor(store: ClusterStore, opts: RedisClusterLinkOptions = {}) {
    this.store = store;
    this.nodeTimeoutMs = opts.nodeTimeoutMs ?? 5000;
    this.streamMaxLen = opts.streamMaxLen ?? 100_000;
    this.releaseTimeoutMs = opts.releaseTimeoutMs ?? this.nodeTimeoutMs;
    this.recentIds = opts.recentIds ?? 100_000;
  }

  /** False while Redis is unreachable (and before start). */
  get healthy(): boolean {
    return this.#p?.ctx.healthy ?? false;
  }

  /** Nodes this node currently forwards to for `topic` (tests, diagnostics). */
  routesFor(topic: string): string[] {
    return this.#p?.routes.routesFor(topic) ?? [];
  }

  /** Known remote nodes with their filters (tests, diagnostics). */
  routeTable(): Map<string, string[]> {
    return this.#p?.routes.table() ?? new Map();
  }

  async start(host: ClusterHost): Promise<void> {
    const me = host.nodeId;
    const opts = this.store.options;
    const where = describeRedis(opts);
    const cmd = createRedis(opts, { name: `mqttwk-cluster-${me}` });
    const sub = createRedis(opts, { name: `mqttwk-sub-${me}`, autoPipelining: false });
    const reader = createRedis(opts, { name: `mqttwk-reader-${me}`, autoPipelining: false });
    // Forwarded batches: one command per node and turn, written as it is issued. Through the
    // auto-pipelined command connection each also went through a pipeline and a second copy
    // (half of the publishing node's Redis client CPU at 3,000 batches/s).
    const fwd = createRedis(opts, { name: `mqttwk-forward-${me}`, autoPipelining: false });
    this.#clients = [cmd, sub, reader, fwd];
    this.#reader = reader;
    const keys = new RedisKeys(opts.keyPrefix ?? DEFAULT_PREFIX);
    const ctx = new LinkContext(host, this.store, keys, cmd, this.nodeTimeoutMs);
    const p = this.#compose(ctx, fwd);
    this.#p = p;
    this.store.setFence?.(ctx.lease);
    // The command connection speaks for all three: they fail and come back together.
    ignoreErrors(sub);
    ignoreErrors(reader);
    ignoreErrors(fwd);
    watchConnection(cmd, where, {
      down: (why) => this.#down(why),
      up: () => this.#up(),
    }, true);
    try {
      await withTimeout(
        Promise.all([cmd.connect(), sub.connect(), reader.connect(), fwd.connect()]),
        10_000,
        where,
      ).catch((e) => {
        throw new Error(`cluster: cannot reach ${where}: ${(e as Error).message}`, { cause: e });
      });
      ctx.healthy = true;
      ctx.healthySince = Date.now();
      await p.membership.claimId(where);
      // A new epoch fences whatever an earlier run of this node might still write.
      await p.membership.newEpoch();
    } catch (e) {
      this.#p = null;
      this.#disconnect();
      throw e;
    }

    sub.on("messageBuffer", (ch: Buffer, msg: Buffer) => this.#onMessage(ch, msg));
    await sub.subscribe(
      keys.channel("routes"),
      keys.channel("retained"),
      keys.channel("nodes"),
      keys.channel(`node:${me}:m`),
      keys.channel(`node:${me}:c`),
    );
    sub.on("ready", () => {
      if (!this.#stopped) this.#reload().catch((e) => host.log.warn(`cluster: reload: ${e}`));
    });

    await p.forwarder.ensureGroup(me);
    await cmd.persist(keys.stream(me));
    await p.membership.register();
    // Routes of an earlier run are stale; sessions it held are resumed offline here.
    await p.routes.announceAll(host.localRoutes());
    await this.#reload();
    // Sessions and clients of an earlier run of this node that crashed: their wills are due, and
    // are published only now that the routes to other nodes' subscribers are known.
    await p.sessions.adoptFrom(me);
    await p.wills.publishOf(me);

    const beat = ctx.heartbeatMs;
    const whenUp = (fn: () => unknown) => () => {
      if (ctx.healthy && !ctx.stopped) fn();
    };
    this.#timers.push(setInterval(() => p.membership.beat(), beat));
    this.#timers.push(setInterval(() => this.#checkLease(p), Math.max(50, beat >> 1)));
    this.#timers.push(setInterval(whenUp(() => p.membership.check()), beat));
    this.#timers.push(setInterval(whenUp(() => p.sessions.cleanup()), 5000));
    this.#timers.push(setInterval(whenUp(() => this.#reload().catch(() => {})), 30_000));
    p.forwarder.startReading(reader);
    ctx.stalls.start();
    host.log.info(
      `cluster: node ${me} joined via ${where} (${p.routes.nodes().length} other node(s) ` +
        `known, node timeout ${this.nodeTimeoutMs} ms, epoch ${ctx.lease.epoch})`,
    );
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    const p = this.#p;
    p?.ctx.stalls.stop();
    if (!p) return this.#disconnect(true);
    p.ctx.stopped = true;
    try {
      // Offline sessions are taken over by another node: their state must be in Redis first.
      await withTimeout(this.store.flush(), 5000, "flushing the store");
    } catch (e) {
      p.ctx.log.warn(`cluster: leaving uncleanly: ${(e as Error).message}`);
    }
    p.ctx.lease.close();
    try {
      if (p.ctx.healthy) {
        await withTimeout(p.routes.settled(), 2000, "route updates").catch(() => {});
        await withTimeout(p.membership.leave(), 2000, "leaving");
      }
    } catch (e) {
      p.ctx.log.warn(`cluster: leaving uncleanly: ${(e as Error).message}`);
    }
    this.#reader?.disconnect();
    await p.forwarder.stopped();
    this.#disconnect(true);
    p.ctx.log.info(`cluster: node ${p.ctx.me} left; another node takes over its sessions`);
  }

  routeAdded(filter: string): void | Promise<void> {
    if (this.#live) return this.#p!.routes.added(filter);
  }

  routeRemoved(filter: string): void {
    if (this.#live) this.#p!.routes.removed(filter);
  }

  forward(msg: StoredMessage): void | Promise<void> {
    if (!this.#live) return;
    const p = this.#p!;
    const lapsed = msg.qos === 0 ? undefined : p.ctx.lease.whenHeld();
    if (!lapsed) return this.#forward(p, msg);
    return this.#afterRenewal(lapsed, () => this.#forward(p, msg));
  }

  /** To the nodes that route it, and to sessions on their way here (SessionHolder.arriving). */
  #forward(p: Parts, msg: StoredMessage): void | Promise<void> {
    const sent = p.forwarder.forward(msg);
    if (msg.qos === 0 || p.sessions.arriving.size === 0) return sent;
    const ids = subscribedTo(p.sessions.arriving, msg.topic);
    if (!ids) return sent;
    const queued = p.forwarder.toArriving(msg, ids);
    return sent ? Promise.all([sent, queued]).then(() => {}) : queued;
  }

  /**
   * A QoS 1/2 message accepted while the lease lapsed (this process was paused): its copies go,
   * and its publisher's ack with them, only once the lease was renewed. The route table may be
   * stale after a pause, and a node taken over meanwhile acknowledges nothing (rejects).
   */
  #afterRenewal(lapsed: Promise<string>, send: () => void | Promise<void>): Promise<void> {
    const r = lapsed.then(send);
    // Callers that do not wait (a will) must not see a fenced node's refusal as unhandled.
    r.catch(() => {});
    return r;
  }

  routedElsewhere(topic: string): boolean | undefined {
    // A node whose routes may be stale (Redis unreachable) cannot rule anyone out.
    if (!this.#live || !this.healthy) return undefined;
    return this.#p!.routes.targets(topic) !== null;
  }

  forwardShared(
    msg: StoredMessage,
    node: string,
    share: string,
    hops: number,
  ): void | Promise<void> {
    if (!this.#live) return;
    const p = this.#p!;
    const lapsed = msg.qos === 0 ? undefined : p.ctx.lease.whenHeld();
    if (!lapsed) return p.forwarder.forwardShared(msg, node, share, hops);
    return this.#afterRenewal(lapsed, () => p.forwarder.forwardShared(msg, node, share, hops));
  }

  acquireSession(clientId: string): Promise<boolean> {
    if (!this.#p) return Promise.reject(new Error("the cluster link is not started"));
    return this.#p.sessions.acquire(clientId);
  }

  sessionResumed(clientId: string): void {
    this.#p?.sessions.resumed(clientId);
  }

  retainedChanged(topic: string, msg: StoredMessage | null): void {
    if (this.#live) this.#p!.retained.changed(topic, msg);
  }

  keepWill(clientId: string, kept: KeptWill | null): void {
    this.#p?.wills.keep(clientId, kept);
  }

  shareSysStats(mine: NodeSysStats, maxAgeMs: number): Promise<SharedSysStats | undefined> {
    // While Redis is away the others' figures are unknown: no totals rather than wrong ones.
    if (!this.#live || !this.healthy) return Promise.resolve(undefined);
    return withTimeout(this.#p!.sys.share(mine, maxAgeMs), 5000, "sharing $SYS figures");
  }

  get #live(): boolean {
    return this.#p !== null && !this.#stopped;
  }

  #compose(ctx: LinkContext, fwd: RedisClient): Parts {
    let membership: Membership | null = null;
    ctx.lease = new Lease(
      ctx.g(`epoch:${ctx.me}`),
      ctx.nodeTimeoutMs,
      () => void membership?.beat(),
      (why) => this.#fenced(why),
    );
    const routes = new RouteTable(ctx);
    const forwarder = new Forwarder(
      ctx,
      fwd,
      (topic) => routes.targets(topic),
      this.streamMaxLen,
      this.recentIds,
    );
    const sessions = new SessionHolder(
      ctx,
      this.releaseTimeoutMs,
      () => forwarder.drainOwn(),
      (node) => membership!.startTakeover(node),
      () => forwarder.hold(),
      (id, node, filters) => forwarder.passOn(id, node, filters, 2 * ctx.nodeTimeoutMs),
      {
        add: (filters) => Promise.all(filters.map((f) => routes.added(f))).then(() => {}),
        remove: (filter) => void routes.removed(filter).catch(() => {}),
      },
    );
    const wills = new KeptWills(ctx);
    const parts = { sessions, wills, forwarder, routes };
    membership = new Membership(ctx, routes, (dead) => takeOver(ctx, parts, dead));
    return {
      ctx,
      membership,
      sessions,
      routes,
      forwarder,
      retained: new RetainedReplica(ctx),
      wills,
      sys: new SysStatsBoard(ctx),
    };
  }

  /**
   * The lease by the local monotonic clock, between heartbeats: a paused process notices here
   * (or at its next commit, which waits for a valid lease) and renews it before acknowledging
   * anything; a renewal Redis refuses fences the node.
   */
  #checkLease(p: Parts): void {
    const { lease, log } = p.ctx;
    if (this.#stopped || lease.fenced) return;
    if (lease.held) {
      if (this.#lapsedAt !== null) {
        log.info(
          `cluster: lease renewed after it had lapsed for ${Math.round(this.#lapsedAt)} ms; ` +
            `no other node took this one over`,
        );
        this.#lapsedAt = null;
      }
      return;
    }
    if (this.#lapsedAt === null) {
      this.#lapsedAt = lease.lapsedFor;
      log.warn(
        `cluster: lease of node ${p.ctx.me} lapsed ${Math.round(this.#lapsedAt)} ms ago ` +
          `(this process was paused, or Redis is slow or unreachable); acknowledgements wait ` +
          `until it is renewed`,
      );
    }
    if (p.ctx.healthy) void p.membership.beat();
  }

  /**
   * Redis refused a write of this node's (its epoch moved): another node took it over while it
   * was unresponsive. Everything it serves is owned elsewhere now: its clients are closed, its
   * sessions and unwritten changes dropped, unacknowledged; then it rejoins under a new epoch.
   */
  #fenced(why: string): void {
    const p = this.#p;
    if (!p || this.#stopped || p.ctx.lease.fenced) return;
    const { lease, log, host, me } = p.ctx;
    const lapsed = Math.round(lease.lapsedFor);
    lease.fence();
    const { clients, sessions } = host.abandonSessions(
      "this node was taken over by another while unresponsive",
    );
    const changes = this.store.discardPending?.() ?? 0;
    p.sessions.forgetAll();
    log.error(
      `cluster: node ${me} was fenced: another node took over its sessions while its lease ` +
        `had lapsed (lapsed ${lapsed} ms ago; ${why}). Closed ${clients} client(s), dropped ` +
        `${sessions} session(s) and ${changes} unwritten change(s) without acknowledging them; ` +
        `rejoining under a new epoch`,
    );
    this.#lapsedAt = null;
    void this.#rejoin(p);
  }

  async #rejoin(p: Parts): Promise<void> {
    const { ctx } = p;
    for (let i = 0; !this.#stopped; i++) {
      try {
        const epoch = await p.membership.newEpoch(true);
        await p.membership.register();
        await p.forwarder.ensureGroup(ctx.me);
        await ctx.cmd.persist(ctx.keys.stream(ctx.me));
        await p.routes.announceAll(ctx.host.localRoutes());
        await this.#reload();
        ctx.log.info(`cluster: node ${ctx.me} rejoined under epoch ${epoch}`);
        return;
      } catch (e) {
        if (i % 10 === 0) ctx.log.warn(`cluster: rejoining failed, retrying: ${e}`);
        await sleep(Math.min(1000, ctx.heartbeatMs));
      }
    }
  }

  /** The route table and the retained set, afresh from Redis. */
  async #reload(): Promise<void> {
    const p = this.#p!;
    await p.routes.reload();
    await p.retained.reload();
  }

  #onMessage(channel: Buffer, data: Buffer): void {
    const p = this.#p;
    if (this.#stopped || !p) return;
    // A channel message holds one wire message or a batch of them (outbox.ts), in order.
    decodeFrames(
      data,
      (m) => this.#onWire(p, channel, m),
      (e) => p.ctx.log.warn(`cluster: bad message on ${channel}: ${(e as Error)?.message ?? e}`),
    );
  }

  #onWire(p: Parts, channel: Buffer, m: WireMessage): void {
    try {
      switch (m.kind) {
        case "publish":
          return p.forwarder.fromChannel(m.msg);
        case "publish-shared":
          return p.forwarder.fromChannel(m.msg, m.share, m.hops);
        case "route-added":
        case "route-removed":
        case "routes-reset":
          return p.routes.onWire(m);
        case "retained":
          return p.retained.onWire(m);
        case "node-gone":
          return p.membership.gone(m.node);
        case "release":
        case "released":
          return p.sessions.onWire(m);
        default:
          throw new Error(`a ${m.kind} message does not belong on a channel`);
      }
    } catch (e) {
      p.ctx.log.warn(`cluster: bad message on ${channel}: ${(e as Error).message}`);
    }
  }

  #down(why: string): void {
    const p = this.#p;
    if (this.#stopped || !p) return;
    p.ctx.healthy = false;
    if (this.#degraded) return;
    this.#degraded = true;
    p.ctx.log.warn(`cluster: degraded: ${why}; serving local clients only, retrying with backoff`);
  }

  #up(): void {
    const p = this.#p;
    if (this.#stopped || !p) return;
    p.ctx.healthy = true;
    p.ctx.healthySince = Date.now();
    p.membership.reconnected();
    if (!this.#degraded) return;
    this.#degraded = false;
    p.ctx.log.info("cluster: Redis reachable again; re-announcing routes and sessions");
    this.#reconcile(p);
  }

  /** After an outage: heartbeat, routes, held sessions, consumer group, route table, retained. */
  #reconcile(p: Parts): void {
    if (this.#reconciling) return;
    const run = async () => {
      await p.membership.beat();
      await p.routes.announceAll(p.ctx.host.localRoutes());
      await p.forwarder.ensureGroup(p.ctx.me);
      await p.sessions.reclaim();
      await this.#reload();
    };
    this.#reconciling = run().catch((e) =>
      p.ctx.log.warn(`cluster: reconcile failed, will retry: ${e?.message ?? e}`)
    ).finally(() => {
      this.#reconciling = null;
    });
  }

  #disconnect(graceful = false): void {
    for (const c of this.#clients) {
      if (graceful) c.quit().catch(() => c.disconnect());
      else c.disconnect();
    }
  }
}
