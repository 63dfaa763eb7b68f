/**
 * Who subscribed to what on this node: the topic tree of every session's filters, and the
 * cluster's route table kept in step with it (a node is told about a filter when its first local
 * subscriber arrives and when its last one leaves).
 */
import type { QoS } from "../codec/packets.ts";
import type { ClusterLink } from "./ports/cluster.ts";
import { TopicTree } from "./topic_tree.ts";

export interface SubValue {
  qos: QoS;
}

export class SubscriptionTable {
  readonly tree = new TopicTree<SubValue>();
  readonly #cluster: ClusterLink | undefined;

  constructor(cluster: ClusterLink | undefined) {
    this.#cluster = cluster;
  }

  /** Returns a promise while a new route is being announced to the cluster. */
  add(filter: string, clientId: string, qos: QoS): void | Promise<void> {
    if (this.tree.add(filter, clientId, { qos })) return this.#cluster?.routeAdded(filter);
  }

  remove(filter: string, clientId: string): void {
    if (this.tree.remove(filter, clientId) === "last") this.#cluster?.routeRemoved(filter);
  }

  /** Number of (filter, session) pairs. */
  get size(): number {
    return this.tree.size;
  }

  /** Filters with at least one local subscriber. */
  filters(): string[] {
    return this.tree.filters();
  }
}
