/**
 * Who subscribed to what on this node: the topic tree of every session's filters, the shared
 * subscription groups, and the cluster's route table kept in step with them (a node is told
 * about a filter, or a shared group, when its first local subscriber arrives and when its last
 * one leaves).
 */
import type { QoS } from "../codec/packets.ts";
import type { ClusterLink } from "./ports/cluster.ts";
import { isShared, SharedGroups } from "./shared_groups.ts";
import { TopicTree } from "./topic_tree.ts";

export interface SubValue {
  qos: QoS;
}

export class SubscriptionTable {
  readonly tree = new TopicTree<SubValue>();
  /** Shared subscriptions (`$share/g/f`, `$queue/f`), which the router does not see. */
  readonly shared: SharedGroups;
  readonly #cluster: ClusterLink | undefined;

  constructor(cluster: ClusterLink | undefined, shared = new SharedGroups()) {
    this.#cluster = cluster;
    this.shared = shared;
  }

  /** Returns a promise while a new route is being announced to the cluster. */
  add(filter: string, clientId: string, qos: QoS): void | Promise<void> {
    if (isShared(filter)) {
      if (this.shared.join(filter, clientId, qos)) return this.#cluster?.routeAdded(filter);
      return;
    }
    if (this.tree.add(filter, clientId, { qos })) return this.#cluster?.routeAdded(filter);
  }

  remove(filter: string, clientId: string): void {
    if (isShared(filter)) {
      if (this.shared.leave(filter, clientId)) this.#cluster?.routeRemoved(filter);
      return;
    }
    if (this.tree.remove(filter, clientId) === "last") this.#cluster?.routeRemoved(filter);
  }

  /** Number of (filter, session) pairs. */
  get size(): number {
    return this.tree.size + this.shared.size;
  }

  /** Filters with at least one local subscriber, shared ones as subscribed (`$share/g/f`). */
  filters(): string[] {
    const out = this.tree.filters();
    if (this.shared.active) out.push(...this.shared.localKeys());
    return out;
  }
}
