/**
 * What every part of the Redis cluster link shares: who this node is, its command connection,
 * the key names, the timing and whether the link is up. Owned and updated by RedisClusterLink.
 */
import type { ClusterHost } from "../broker/ports/cluster.ts";
import type { Store } from "../broker/ports/store.ts";
import type { Logger } from "../log.ts";
import type { RedisClient, RedisConnOptions } from "../redis/conn.ts";
import type { RedisKeys } from "../redis/keys.ts";
import type { Fence } from "../redis/fence.ts";
import type { Lease } from "./lease.ts";
import { StallMonitor } from "./stalls.ts";

/**
 * The shared store as the cluster link uses it: where its Redis is (the link opens its own
 * connections there), reads of what other nodes left, and flushes before acknowledging.
 */
export interface ClusterStore extends Pick<Store, "flush" | "loadSession" | "loadRetained"> {
  readonly options: RedisConnOptions;
  /** Writes carry this node's fencing token (see src/redis/fence.ts). */
  setFence?(fence: Fence | null): void;
  /** Forgets unwritten mutations (the node was fenced); returns how many. */
  discardPending?(): number;
}

/** State shared by the parts of one running link. */
export class LinkContext {
  /** False while Redis is unreachable (and until the first connect). */
  healthy = false;
  /** When Redis was last (re)connected: nodes get one timeout after it to renew heartbeats. */
  healthySince = Date.now();
  stopped = false;
  /** This node's lease and fencing token; set by the link right after construction. */
  lease!: Lease;
  /** How long the event loop is blocked (logged when it risks the lease). */
  readonly stalls: StallMonitor;

  constructor(
    readonly host: ClusterHost,
    readonly store: ClusterStore,
    readonly keys: RedisKeys,
    /** The command connection (auto-pipelined; queues commands while Redis is away). */
    readonly cmd: RedisClient,
    readonly nodeTimeoutMs: number,
  ) {
    // One line per 10 s at most (with how many more there were): a loaded host stalls often.
    let loggedAt = -Infinity;
    let more = 0;
    this.stalls = new StallMonitor(50, (ms) => {
      const now = performance.now();
      if (now - loggedAt < 10_000) {
        more++;
        return;
      }
      loggedAt = now;
      const also = more ? ` (and ${more} more stall(s) since the last report)` : "";
      more = 0;
      this.log.warn(
        `cluster: the event loop was blocked for ${ms} ms${also}; heartbeats every ` +
          `${this.heartbeatMs} ms, the lease lapses after ${Math.round(0.9 * nodeTimeoutMs)} ms`,
      );
    }, Math.max(250, this.heartbeatMs >> 1));
  }

  get me(): string {
    return this.host.nodeId;
  }
  get log(): Logger {
    return this.host.log;
  }
  /** Heartbeat period: five heartbeats per node timeout. */
  get heartbeatMs(): number {
    return Math.max(100, Math.floor(this.nodeTimeoutMs / 5));
  }
  /** `P {g}:<name>`. */
  g(name: string): string {
    return this.keys.global(name);
  }
}
