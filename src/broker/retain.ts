/**
 * The RETAIN flag of a PUBLISH applied: the retained message of its topic is set, replaced or
 * (with an empty payload) deleted, persisted, and announced to the cluster.
 */
import { compact } from "./messages.ts";
import type { StoredMessage } from "./model.ts";
import type { Persistence } from "./persistence.ts";
import type { ClusterLink } from "./ports/cluster.ts";
import type { RetainedIndex } from "./retained.ts";
import type { BrokerStats } from "./stats.ts";

export class Retainer {
  readonly index: RetainedIndex;
  readonly #persistence: Persistence;
  readonly #stats: BrokerStats;
  readonly #cluster: ClusterLink | undefined;

  constructor(
    index: RetainedIndex,
    persistence: Persistence,
    stats: BrokerStats,
    cluster: ClusterLink | undefined,
  ) {
    this.index = index;
    this.#persistence = persistence;
    this.#stats = stats;
    this.#cluster = cluster;
  }

  /** Applies a retained PUBLISH accepted on this node. */
  apply(msg: StoredMessage): void {
    if (msg.payload.byteLength === 0) {
      // MQTT-3.3.1-10/11: an empty retained payload deletes, and is not stored.
      if (this.index.get(msg.topic)) {
        this.index.set(msg.topic, null);
        this.#persistence.setRetained(msg.topic, null);
      }
    } else {
      compact(msg);
      this.index.set(msg.topic, msg);
      this.#persistence.setRetained(msg.topic, msg);
    }
    this.#stats.retained = this.index.size;
    this.#cluster?.retainedChanged(msg.topic, msg.payload.byteLength === 0 ? null : msg);
  }

  /** A retained message was set (or, with null, deleted) on another node: the store is shared. */
  fromPeer(topic: string, msg: StoredMessage | null): void {
    this.index.set(topic, msg);
    this.#stats.retained = this.index.size;
  }
}
