/**
 * Who subscribed to what on this node: the topic tree of every session's filters, and the
 * cluster's route table kept in step with it (a node is told about a filter when its first local
 * subscriber arrives and when its last one leaves).
 */
import type { QoS } from "../codec/packets.ts";
import type { SubscriptionRecord } from "./model.ts";
import type { ClusterLink } from "./ports/cluster.ts";
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
  readonly #cluster: ClusterLink | undefined;

  constructor(cluster: ClusterLink | undefined) {
    this.#cluster = cluster;
  }

  /**
   * Adds (or replaces) a session's subscription. Returns a promise while a new route is being
   * announced to the cluster.
   */
  add(filter: string, clientId: string, value: SubValue): void | Promise<void> {
    if (this.tree.add(filter, clientId, value)) return this.#cluster?.routeAdded(filter);
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
