/**
 * Who subscribed to what on this node: the topic tree of every session's filters, the shared
 * subscription groups, and the cluster's route table kept in step with them (a node is told
 * about a filter, or a shared group, when its first local subscriber arrives and when its last
 * one leaves).
 */
import type { QoS } from "../codec/packets.ts";
import type { SubscriptionRecord } from "./model.ts";
import type { ClusterLink } from "./ports/cluster.ts";
import { isShared, SharedGroups, type SharedMember } from "./shared_groups.ts";
import { TopicTree } from "./topic_tree.ts";

/** What routing needs of one subscription (the tree's value per filter and session). */
export interface SubValue {
  qos: QoS;
  /** MQTT 5 No Local: not delivered back to the session's own client (MQTT-3.8.3-3). */
  noLocal: boolean;
  /** MQTT 5 Retain As Published: live deliveries keep the message's RETAIN flag. */
  retainAsPublished: boolean;
  /** MQTT 5 Subscription Identifier; 0 for none. */
  subscriptionId: number;
  /**
   * The filter overlaps a topic the subscriber may not read: each message is checked against
   * the authorizer on delivery (mosquitto's rule for wildcards across a deny rule).
   */
  checkEachDelivery: boolean;
}

/** The routing value of a subscription record. */
export function subValue(rec: SubscriptionRecord, checkEachDelivery = false): SubValue {
  return {
    qos: rec.qos,
    noLocal: rec.noLocal === true,
    retainAsPublished: rec.retainAsPublished === true,
    subscriptionId: rec.subscriptionId ?? 0,
    checkEachDelivery,
  };
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

  /**
   * Adds (or replaces) a session's subscription; a shared one (`$share/g/f`, `$queue/f`) joins
   * its group instead of the tree. Returns a promise while a new route is being announced to the
   * cluster.
   */
  add(filter: string, clientId: string, value: SubValue): void | Promise<void> {
    if (isShared(filter)) {
      const member: SharedMember = {
        qos: value.qos,
        retainAsPublished: value.retainAsPublished,
        // Allocated once here, not per delivery.
        subscriptionIds: value.subscriptionId !== 0 ? [value.subscriptionId] : null,
        checkEachDelivery: value.checkEachDelivery,
      };
      if (this.shared.join(filter, clientId, member)) return this.#cluster?.routeAdded(filter);
      return;
    }
    if (this.tree.add(filter, clientId, value)) return this.#cluster?.routeAdded(filter);
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
