/**
 * Which node holds which session, and moving sessions between nodes.
 *
 * `P {g}:holder` maps client id -> node holding the session (connected or offline) and
 * `P {g}:held:<node>` lists each node's sessions. A node that gets a CONNECT for a session held
 * elsewhere asks the holder to release it (control channel); a dead or silent holder is first
 * taken over by a survivor, which is then asked instead. A node taking over a dead one resumes
 * the dead node's sessions offline (adoptFrom).
 */
import { evalScript, sleep } from "../redis/commands.ts";
import { fenced, isFenced } from "../redis/fence.ts";
import type { LinkContext } from "./context.ts";
import { encodeWire, type WireMessage } from "./wire.ts";
import { isShared } from "../broker/shared_groups.ts";
import type { LoadedSession } from "../broker/model.ts";

/*
 * Every script runs under this node's epoch (src/redis/fence.ts): KEYS[1] epoch, ARGV[1] the
 * epoch held; then KEYS: holder, held:<me>; ARGV: client id, ...
 */

/** Claims `id` for ARGV[3]; returns the previous holder. */
const CLAIM = fenced(`
local old = redis.call('HGET', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[2])
return old`);

/** Claims `id` only if nobody (or ARGV[3]) holds it; returns the holder afterwards. */
const CLAIM_IF_FREE = fenced(`
local old = redis.call('HGET', KEYS[2], ARGV[2])
if old and old ~= ARGV[3] then return old end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[2])
return ARGV[3]`);

/** Moves `id` from dead ARGV[3] to ARGV[4] if ARGV[3] still holds it. */
const CLAIM_FROM = fenced(`
if redis.call('HGET', KEYS[2], ARGV[2]) ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[2])
return 1`);

/** Forgets `id` if ARGV[3] holds it. */
const RELEASE_IF_MINE = fenced(`
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[3] then redis.call('HDEL', KEYS[2], ARGV[2]) end
redis.call('SREM', KEYS[3], ARGV[2])
return 1`);

/** The sessions this node holds, and the protocol that moves them. */
export class SessionHolder {
  /** Sessions this node holds in Redis, with the time it claimed them. */
  #held = new Map<string, number>();
  #acquiring = new Map<string, { lost: boolean }>();
  #releases = new Map<string, () => void>();
  /** Sessions claimed from a dead node and not yet resumed here (see claimFrom). */
  #adopting = new Set<Promise<void>>();
  #adopted: (() => void) | null = null;

  constructor(
    private readonly ctx: LinkContext,
    private readonly releaseTimeoutMs: number,
    /** Runs before a session is released: messages queued for it here must reach it first. */
    private readonly beforeRelease: () => Promise<void>,
    /** Starts taking over a node whose heartbeat expired (Membership.startTakeover). */
    private readonly takeOverNow: (node: string) => Promise<void> = () => Promise.resolve(),
    /** Holds delivery from this node's stream while a session moves here (Forwarder.hold). */
    private readonly hold: () => () => void = () => () => {},
    /** A session released to `node` (Forwarder.passOn). */
    private readonly movedAway: (clientId: string, node: string, filters: string[]) => void =
      () => {},
    /** Announces (RouteTable.added) or withdraws routes of this node. */
    private readonly routes: {
      add(filters: string[]): Promise<void>;
      remove(filter: string): void;
    } | null = null,
  ) {}

  /** Filters announced ahead of a session's move here, by client id (see #announceAhead). */
  #announced = new Map<string, string[]>();

  /**
   * Sessions moving here, not resumed yet: client id -> its (non-shared) filters. What this
   * node's own publishers send meanwhile must reach them too (Forwarder.toArriving).
   */
  readonly arriving: Map<string, string[]> = new Map();

  /** Takeovers delivering a dead node's stream into sessions adopted here. */
  #draining = new Set<Promise<unknown>>();

  /** Releases of sessions to other nodes wait for `p` (a takeover's drain of a dead node). */
  draining(p: Promise<unknown>): void {
    const done = p.catch(() => {}).finally(() => this.#draining.delete(done));
    this.#draining.add(done);
  }

  /** Holds of sessions being moved here, ended by `resumed` (or a safety timer). */
  #moving = new Map<string, () => void>();

  /** The session of `clientId` is resumed here (or its CONNECT failed): ends its move. */
  resumed(clientId: string): void {
    this.#moving.get(clientId)?.();
    const ahead = this.#announced.get(clientId);
    if (!ahead) return;
    this.#announced.delete(clientId);
    // Routes announced for a move that did not happen (no local subscriber has them) go again.
    const local = new Set(this.ctx.host.localRoutes());
    for (const f of ahead) if (!local.has(f)) this.routes?.remove(f);
  }

  /**
   * Before a live holder releases `clientId`, this node routes the session's filters: from then
   * on every publisher's node sends copies here too (held until the session is resumed), so a
   * copy sent only to the old holder after it let the session go cannot be the only one. This
   * node's own publishers are no such node (the session is not here yet): their messages for it
   * go into this node's own stream (see arriving), as the old holder may stop routing them.
   */
  async #announceAhead(clientId: string): Promise<void> {
    if (!this.routes || this.#announced.has(clientId)) return;
    const filters = await this.ctx.cmd.hkeys(this.ctx.keys.session(clientId)[1]);
    if (filters.length === 0) return;
    this.#announced.set(clientId, filters);
    const plain = filters.filter((f) => !isShared(f));
    if (plain.length && this.#moving.has(clientId)) this.arriving.set(clientId, plain);
    await this.routes.add(filters);
  }

  /**
   * Makes sure no other node holds `clientId`; resolves once any holder has released it, to
   * whether some node (this one included) held it before.
   */
  async acquire(clientId: string): Promise<boolean> {
    const { cmd, me } = this.ctx;
    // A node whose lease lapsed asks no holder to let a session go before it renewed the lease
    // (rejects: it was fenced, and the CONNECT with it).
    await this.ctx.lease.whenHeld();
    const state = { lost: false };
    this.#acquiring.set(clientId, state);
    try {
      // The holder releases it; a dead (or unresponsive) holder is first taken over by a survivor,
      // which queues what the dead node's stream still held into the session; then that survivor
      // releases it to us.
      for (let round = 0; round < 4; round++) {
        const old = await cmd.hget(this.ctx.g("holder"), clientId);
        if (!old || old === me) break;
        this.#startMove(clientId);
        const alive = await cmd.exists(this.ctx.g(`alive:${old}`));
        if (alive) await this.#announceAhead(clientId);
        if (alive && (await this.#requestRelease(old, clientId))) break;
        // Its heartbeat expired (or it stopped answering): start the takeover from here at once
        // rather than at the next liveness check; the election admits only one survivor.
        if (!(await cmd.exists(this.ctx.g(`alive:${old}`)))) void this.takeOverNow(old);
        if (!(await this.#awaitTakeover(old, clientId))) break;
      }
      // Taking a dead node over here: its sessions are resumed (backlog first) before one is used.
      if (this.#adopting.size) await Promise.all(this.#adopting);
      const previous = await this.#run(CLAIM, clientId, me);
      this.#held.set(clientId, Date.now());
      if (state.lost) {
        throw new Error(`session ${clientId} was taken over by another node meanwhile`);
      }
      return previous !== null && previous !== undefined;
    } finally {
      this.#acquiring.delete(clientId);
    }
  }

  /** Holds this node's stream until the session is resumed here (at most 30 s). */
  #startMove(clientId: string): void {
    if (this.#moving.has(clientId)) return;
    const unhold = this.hold();
    const timer = setTimeout(() => end(), 30_000);
    const end = () => {
      clearTimeout(timer);
      this.#moving.delete(clientId);
      this.arriving.delete(clientId);
      unhold();
    };
    this.#moving.set(clientId, end);
  }

  /** Handles a release request or its answer. */
  onWire(m: WireMessage): void {
    if (m.kind === "release") this.#onReleaseRequest(m.clientId, m.from, m.req);
    else if (m.kind === "released") this.#releases.get(m.req)?.();
  }

  /** Resumes offline here every session `node` held; returns how many. */
  async adoptFrom(node: string): Promise<number> {
    const loaded = await this.claimFrom(node);
    this.adopt(loaded);
    await this.ctx.store.flush();
    return loaded.length;
  }

  /**
   * Claims (in Redis) and loads every session `node` held, without resuming them yet (adopt).
   * Until `adopt`, requests to release them wait: they are not here yet.
   */
  async claimFrom(node: string): Promise<LoadedSession[]> {
    const { cmd, me, store } = this.ctx;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#adopting.add(promise);
    this.#adopted = resolve;
    const ids = await cmd.smembers(this.ctx.g(`held:${node}`));
    const out: LoadedSession[] = [];
    try {
      for (const id of ids) {
        const ok = await this.#run(CLAIM_FROM, id, node, me);
        if (ok !== 1) continue;
        const loaded = await store.loadSession(id);
        if (!loaded) {
          await this.#run(RELEASE_IF_MINE, id, me);
          continue;
        }
        this.#held.set(id, Date.now());
        out.push(loaded);
      }
    } catch (e) {
      this.#adopting.delete(promise);
      resolve();
      throw e;
    }
    return out;
  }

  /**
   * Resumes offline here the sessions claimFrom loaded. `draining`: a takeover delivers the dead
   * node's stream into them next (see draining).
   */
  adopt(loaded: LoadedSession[], draining = false): void {
    for (const l of loaded) this.ctx.host.adoptSession(l, draining);
    const done = this.#adopted;
    this.#adopted = null;
    for (const p of this.#adopting) {
      this.#adopting.delete(p);
    }
    done?.();
  }

  /**
   * After an outage: claims again every local session nobody else took meanwhile, and releases
   * locally those another node took over (their clients reconnect there).
   */
  async reclaim(): Promise<void> {
    const { me, host } = this.ctx;
    for (const id of host.localSessions()) {
      const holder = await this.#run(CLAIM_IF_FREE, id, me);
      if (holder === me) {
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
  }

  /** Forgets in Redis the sessions this node no longer holds (ended, expired, released). */
  async cleanup(): Promise<void> {
    const { me, host } = this.ctx;
    const local = new Set(host.localSessions());
    const now = Date.now();
    for (const id of local) if (!this.#held.has(id)) this.#held.set(id, now);
    for (const [id, since] of this.#held) {
      if (local.has(id) || this.#acquiring.has(id) || now - since < 10_000) continue;
      this.#held.delete(id);
      await this.#run(RELEASE_IF_MINE, id, me).catch(() => {});
    }
  }

  /** Runs a holder script under this node's epoch; a refusal fences the node. */
  async #run(script: string, ...args: string[]): Promise<unknown> {
    const { lease } = this.ctx;
    const keys = [lease.key, this.ctx.g("holder"), this.ctx.g(`held:${this.ctx.me}`)];
    try {
      return await evalScript(this.ctx.cmd, script, keys, [lease.epoch, ...args]);
    } catch (e) {
      if (isFenced(e)) lease.refused((e as Error).message);
      throw e;
    }
  }

  /** Forgets every session this node held (it was fenced: they are owned elsewhere now). */
  forgetAll(): void {
    this.#held.clear();
  }

  /** Waits until a dead node has been taken over; false if that did not happen in time. */
  async #awaitTakeover(node: string, clientId: string): Promise<boolean> {
    const { cmd, nodeTimeoutMs } = this.ctx;
    const end = Date.now() + 8 * nodeTimeoutMs + 5000;
    while (Date.now() < end && !this.ctx.stopped) {
      const [member, lock, holder] = await Promise.all([
        cmd.sismember(this.ctx.g("nodes"), node),
        cmd.get(this.ctx.g(`adopt:${node}`)),
        cmd.hget(this.ctx.g("holder"), clientId),
      ]);
      // The survivor claimed the session (it releases it once it has resumed it, backlog first).
      if (!member || (lock && holder !== node)) return true;
      if (!lock && (await cmd.exists(this.ctx.g(`alive:${node}`)))) return true; // back alive
      await sleep(Math.min(100, this.ctx.heartbeatMs));
    }
    this.ctx.log.warn(`cluster: node ${node} was not taken over in time; proceeding`);
    return false;
  }

  async #requestRelease(node: string, clientId: string): Promise<boolean> {
    const req = crypto.randomUUID();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#releases.set(req, resolve);
    try {
      await this.ctx.cmd.publish(
        this.ctx.keys.channel(`node:${node}:c`),
        encodeWire({ kind: "release", clientId, from: this.ctx.me, req }),
      );
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<"timeout">((r) => {
        timer = setTimeout(() => r("timeout"), this.releaseTimeoutMs);
      });
      // A holder whose lease lapsed will never answer: no need to wait out the timeout.
      let watching = true;
      const gone = (async () => {
        const key = this.ctx.g(`alive:${node}`);
        while (watching) {
          await sleep(Math.min(100, this.ctx.heartbeatMs));
          if (watching && !(await this.ctx.cmd.exists(key).catch(() => 1))) return "gone" as const;
        }
        return "timeout" as const;
      })();
      const r = await Promise.race([promise, timedOut, gone]);
      watching = false;
      clearTimeout(timer);
      if (r === "gone") return false;
      if (r === "timeout") {
        this.ctx.log.warn(
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
    const { host, cmd, me } = this.ctx;
    const acquiring = this.#acquiring.get(clientId);
    if (acquiring) acquiring.lost = true;
    // A session being taken over from a dead node is released once it is here, backlog included.
    await Promise.all(this.#adopting);
    // ... and its drain, or the rest of the dead node's backlog would miss it.
    if (this.#draining.size) await Promise.all(this.#draining);
    // A node whose lease lapsed may no longer hold the session: it renews the lease first. A
    // fenced one gives nothing away (and does not answer): the session is the survivor's.
    const lapsed = this.ctx.lease.whenHeld();
    if (lapsed && !(await lapsed.then(() => true, () => false))) return;
    try {
      // Messages already queued for this node in its stream (e.g. published while the session
      // was offline) must reach the session before it moves, or they would arrive after it left.
      await this.beforeRelease().catch((e) =>
        host.log.warn(`cluster: draining own stream before releasing ${clientId}: ${e}`)
      );
      // Copies other nodes still route here for it (they have not heard of its new node's
      // routes yet, or they are the new node, which has no local copy of the session until it
      // is resumed there) go on there for a while. Passing on starts in the same turn as the
      // release forgets the session here: a stream entry delivered in between (while the
      // release writes the session, say) would reach no one.
      const filters = await cmd.hkeys(this.ctx.keys.session(clientId)[1]);
      this.movedAway(clientId, from, filters.filter((f) => !isShared(f)));
      await host.releaseSession(clientId);
    } catch (e) {
      host.log.warn(`cluster: releasing ${clientId}: ${(e as Error).message}`);
    }
    this.#held.delete(clientId);
    await cmd.srem(this.ctx.g(`held:${me}`), clientId).catch(() => {});
    await cmd.publish(
      this.ctx.keys.channel(`node:${from}:c`),
      encodeWire({ kind: "released", req }),
    )
      .catch(() => {});
  }
}
