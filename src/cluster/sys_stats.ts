/**
 * The nodes' `$SYS` figures, shared through Redis: every node writes its latest figures into
 * the hash `P {g}:sys` (field = node id, value = JSON with the node's own timestamp) once per
 * `$SYS` interval and reads everyone's back in the same round trip. Figures older than the
 * caller's limit belong to a node that stopped; the live node with the smallest id (the one that
 * publishes the cluster's totals) removes them and is told which nodes they were.
 */
import type { NodeSysStats, SharedSysStats } from "../broker/ports/cluster.ts";
import type { LinkContext } from "./context.ts";

/** A hash value as written by `share`, or null when it is not one (foreign or damaged). */
function parse(raw: string): NodeSysStats | null {
  try {
    const v = JSON.parse(raw);
    if (
      typeof v?.node !== "string" || typeof v.at !== "number" || typeof v.version !== "string" ||
      typeof v.values !== "object" || v.values === null
    ) return null;
    const values: Record<string, number> = {};
    for (const [k, x] of Object.entries(v.values)) if (typeof x === "number") values[k] = x;
    return { node: v.node, at: v.at, version: v.version, values };
  } catch {
    return null;
  }
}

/** This node's side of the shared `$SYS` figures. */
export class SysStatsBoard {
  constructor(private readonly ctx: LinkContext) {}

  get #key(): string {
    return this.ctx.g("sys");
  }

  /** Writes `mine`, reads every node's; see the module comment. */
  async share(mine: NodeSysStats, maxAgeMs: number): Promise<SharedSysStats> {
    const { cmd, me } = this.ctx;
    const res = await cmd.multi().hset(this.#key, me, JSON.stringify(mine)).hgetall(this.#key)
      .exec();
    const [err, all] = res?.[1] ?? [new Error("no reply"), null];
    if (err) throw err;
    const live: NodeSysStats[] = [];
    const stale: string[] = [];
    for (const [field, raw] of Object.entries((all ?? {}) as Record<string, string>)) {
      const s = field === me ? mine : parse(raw);
      if (s !== null && s.node === field && mine.at - s.at <= maxAgeMs) live.push(s);
      else stale.push(field);
    }
    const leader = live.reduce((a, s) => (s.node < a ? s.node : a), me);
    if (leader !== me || stale.length === 0) return { live, gone: [] };
    await cmd.hdel(this.#key, ...stale);
    return { live, gone: stale };
  }
}
