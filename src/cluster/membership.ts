/**
 * Membership and liveness: joining, heartbeats, leaving, and noticing dead nodes.
 *
 * `P {g}:nodes` lists the nodes that joined and were not yet taken over; each refreshes
 * `P {g}:alive:<node>` (its instance token, TTL node-timeout) five times per timeout. A node
 * whose heartbeat stayed missing for two beats (and one full timeout after this node last
 * (re)connected to Redis) is handed to `takeOver`, which elects one survivor to adopt it.
 */
import { evalScript, sleep } from "../redis/commands.ts";
import { fenced, isFenced } from "../redis/fence.ts";
import type { LinkContext } from "./context.ts";
import { Lease } from "./lease.ts";
import type { RouteTable } from "./routes.ts";

/**
 * Heartbeat, under this node's epoch (a node taken over meanwhile is refused: FENCED). KEYS:
 * epoch, alive, nodes. 1 = refreshed, 2 = was missing (re-set), 0 = another owner.
 */
const HEARTBEAT = fenced(`
local v = redis.call('GET', KEYS[2])
if v and v ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
if v then return 1 end
return 2`);

/** Deletes the heartbeat if it is ours. */
const LEAVE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`;

/** This node's membership, and its watch over the other members. */
export class Membership {
  /** Tells this process's heartbeat from another process's using the same node id. */
  readonly token: string = crypto.randomUUID();
  #missingSince = new Map<string, number>();
  #takingOver = new Map<string, Promise<void>>();

  constructor(
    private readonly ctx: LinkContext,
    private readonly routes: Pick<RouteTable, "drop" | "nodes">,
    /** Tries to take a dead node over (only one survivor wins); rejects to be retried later. */
    private readonly takeOver: (node: string) => Promise<void>,
  ) {}

  /**
   * Claims this node id's heartbeat. A live node with the same id keeps refreshing its own; a
   * crashed earlier run of this node stops doing so, and its key expires within node-timeout.
   * `where` names the Redis in the error.
   */
  async claimId(where: string): Promise<void> {
    const { cmd, me, nodeTimeoutMs } = this.ctx;
    const alive = this.ctx.g(`alive:${me}`);
    const deadline = Date.now() + nodeTimeoutMs + 500;
    while (!(await cmd.set(alive, this.token, "PX", nodeTimeoutMs, "NX"))) {
      // Ours already: a heartbeat of this process got in first (a rejoin during start-up).
      if ((await cmd.get(alive)) === this.token) break;
      if (Date.now() > deadline) {
        throw new Error(
          `node id "${me}" is already in use by another live node (its heartbeat in ` +
            `${where} keeps being refreshed). Give every node a unique mqttwk.broker.node-id.`,
        );
      }
      await sleep(Math.min(200, this.ctx.heartbeatMs));
    }
    await this.#awaitAdopted();
  }

  /** Waits (at most 30 s) until a node taking over an earlier run of this node is done. */
  async #awaitAdopted(): Promise<void> {
    const lock = this.ctx.g(`adopt:${this.ctx.me}`);
    for (let i = 0; i < 300 && (await this.ctx.cmd.exists(lock)); i++) await sleep(100);
  }

  /**
   * Takes a new epoch (which fences any earlier run of this node) and starts the lease with a
   * heartbeat under it. After being fenced, first waits for the node that took this one over.
   */
  async newEpoch(afterFencing = false): Promise<string> {
    if (afterFencing) await this.#awaitAdopted();
    const epoch = String(await this.ctx.cmd.incr(this.ctx.g(`epoch:${this.ctx.me}`)));
    this.ctx.lease.rejoined(epoch);
    await this.beat(true);
    return epoch;
  }

  /** Lists this node among the members. */
  async register(): Promise<void> {
    await this.ctx.cmd.sadd(this.ctx.g("nodes"), this.ctx.me);
  }

  /**
   * Refreshes the heartbeat (re-setting it after an outage) and with it the lease; a heartbeat
   * Redis refuses because the epoch moved fences this node. `strict`: failures are thrown.
   */
  async beat(strict = false): Promise<void> {
    const { cmd, me, nodeTimeoutMs, lease } = this.ctx;
    // A stopping node still renews its lease until its last flush is done (lease.close()).
    if (lease.closed || lease.fenced || !lease.joined) return;
    const sentAt = Lease.now();
    try {
      const r = await evalScript(
        cmd,
        HEARTBEAT,
        [lease.key, this.ctx.g(`alive:${me}`), this.ctx.g("nodes")],
        [lease.epoch, this.token, nodeTimeoutMs, me],
      );
      if (r === 1 || r === 2) lease.renewed(sentAt);
      if (r === 0) {
        this.ctx.log.error(
          `cluster: another live process uses node id "${me}"; every node needs a ` +
            `unique mqttwk.broker.node-id (messages for this id are split between them)`,
        );
      }
    } catch (e) {
      if (isFenced(e)) lease.refused((e as Error).message);
      else if (strict) throw e;
      // else degraded: logged by the connection
    }
  }

  /** Deletes the heartbeat so survivors take this node over without waiting for it to expire. */
  async leave(): Promise<void> {
    await evalScript(this.ctx.cmd, LEAVE, [this.ctx.g(`alive:${this.ctx.me}`)], [this.token]);
  }

  /** Redis is back: every node gets a full timeout to renew its heartbeat again. */
  reconnected(): void {
    this.#missingSince.clear();
  }

  /** `node` was taken over (by any node): stop watching it. */
  gone(node: string): void {
    if (node === this.ctx.me) return;
    this.routes.drop(node);
    this.#missingSince.delete(node);
  }

  /**
   * Tries to take `node` over unless already trying (its heartbeat expired); resolves when done.
   * Also called by a CONNECT waiting for the node's session.
   */
  startTakeover(node: string): Promise<void> {
    let p = this.#takingOver.get(node);
    if (!p) {
      p = this.takeOver(node).catch((e) => {
        this.ctx.log.warn(`cluster: taking over ${node} failed: ${e?.message ?? e}; will retry`);
      }).finally(() => this.#takingOver.delete(node));
      this.#takingOver.set(node, p);
    }
    return p;
  }

  /** Looks for members whose heartbeat expired, and takes them over. */
  async check(): Promise<void> {
    const { cmd, me, nodeTimeoutMs } = this.ctx;
    // After a pause of this process its view of the others is stale: renew its own lease first.
    if (!this.ctx.lease.held) return;
    let nodes: string[];
    let alive: number[];
    try {
      nodes = (await cmd.smembers(this.ctx.g("nodes"))).filter((n) => n !== me);
      if (nodes.length === 0) return;
      const m = cmd.multi();
      for (const n of nodes) m.exists(this.ctx.g(`alive:${n}`));
      const res = await m.exec();
      alive = (res ?? []).map(([, v]) => v as number);
    } catch {
      return;
    }
    const now = Date.now();
    // Right after (re)connecting, give every node one timeout to renew its heartbeat.
    const settled = now - this.ctx.healthySince >= nodeTimeoutMs;
    nodes.forEach((n, i) => {
      if (alive[i]) {
        this.#missingSince.delete(n);
        return;
      }
      const since = this.#missingSince.get(n) ?? now;
      this.#missingSince.set(n, since);
      // The election re-checks the heartbeat atomically (a node that came back in time is not
      // taken over). One beat of grace lets a node where a client of the dead one reconnects
      // win it (it starts at once): that client's session is then resumed without a move.
      if (!settled || now - since < this.ctx.heartbeatMs || this.#takingOver.has(n)) return;
      // Failsafe: nobody managed to take it over for a long time.
      if (now - since > 6 * nodeTimeoutMs) this.routes.drop(n);
      this.startTakeover(n);
    });
    for (const n of this.routes.nodes()) if (!nodes.includes(n)) this.routes.drop(n);
  }
}
