/**
 * Membership and liveness: joining, heartbeats, leaving, and noticing dead nodes.
 *
 * `P {g}:nodes` lists the nodes that joined and were not yet taken over; each refreshes
 * `P {g}:alive:<node>` (its instance token, TTL node-timeout) five times per timeout. A node
 * whose heartbeat stayed missing for two beats (and one full timeout after this node last
 * (re)connected to Redis) is handed to `takeOver`, which elects one survivor to adopt it.
 */
import { evalScript, sleep } from "../redis/commands.ts";
import type { LinkContext } from "./context.ts";
import type { RouteTable } from "./routes.ts";

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

/** This node's membership, and its watch over the other members. */
export class Membership {
  /** Tells this process's heartbeat from another process's using the same node id. */
  readonly token: string = crypto.randomUUID();
  #missingSince = new Map<string, number>();
  #takingOver = new Set<string>();

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
      if (Date.now() > deadline) {
        throw new Error(
          `node id "${me}" is already in use by another live node (its heartbeat in ` +
            `${where} keeps being refreshed). Give every node a unique mqttwk.broker.node-id.`,
        );
      }
      await sleep(Math.min(200, this.ctx.heartbeatMs));
    }
    // A node taking over an earlier run of this node finishes first.
    const lock = this.ctx.g(`adopt:${me}`);
    for (let i = 0; i < 300 && (await cmd.exists(lock)); i++) await sleep(100);
  }

  /** Lists this node among the members. */
  async register(): Promise<void> {
    await this.ctx.cmd.sadd(this.ctx.g("nodes"), this.ctx.me);
  }

  /** Refreshes the heartbeat (re-setting it after an outage). */
  async beat(): Promise<void> {
    const { cmd, me, nodeTimeoutMs } = this.ctx;
    if (this.ctx.stopped) return;
    try {
      const r = await evalScript(
        cmd,
        HEARTBEAT,
        [this.ctx.g(`alive:${me}`), this.ctx.g("nodes")],
        [this.token, nodeTimeoutMs, me],
      );
      if (r === 0) {
        this.ctx.log.error(
          `cluster: another live process uses node id "${me}"; every node needs a ` +
            `unique mqttwk.broker.node-id (messages for this id are split between them)`,
        );
      }
    } catch { /* degraded: logged by the connection */ }
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

  /** Looks for members whose heartbeat expired, and takes them over. */
  async check(): Promise<void> {
    const { cmd, me, nodeTimeoutMs, heartbeatMs } = this.ctx;
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
      if (!settled || now - since < 2 * heartbeatMs || this.#takingOver.has(n)) return;
      // Failsafe: nobody managed to take it over for a long time.
      if (now - since > 6 * nodeTimeoutMs) this.routes.drop(n);
      this.#takingOver.add(n);
      this.takeOver(n).catch((e) => {
        this.ctx.log.warn(`cluster: taking over ${n} failed: ${e?.message ?? e}; will retry`);
      }).finally(() => this.#takingOver.delete(n));
    });
    for (const n of this.routes.nodes()) if (!nodes.includes(n)) this.routes.drop(n);
  }
}
