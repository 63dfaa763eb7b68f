/**
 * The RETAIN flag of a PUBLISH applied: the retained message of its topic is set, replaced or
 * (with an empty payload) deleted, persisted, and announced to the cluster. Retained messages
 * with a Message Expiry are removed once it passes (MQTT-3.3.2-5). A single node keeps its own
 * `$SYS` values in memory only, as Mosquitto does: they describe this run, and a store write per
 * changed figure would buy nothing. A cluster keeps them in the shared store, where the other
 * nodes reload the retained set from.
 *
 * The retained set is bounded (`max-retained-messages`, `max-retained-bytes`), as EMQX's retainer
 * is: at the limit a message for a topic that has none is delivered but not stored; replacing or
 * clearing an existing one is always allowed, and the broker's own `$SYS` values are exempt. A
 * 5.0 publisher at QoS 1/2 is told instead (PUBACK/PUBREC 0x97, see handlers/publish.ts).
 */
import type { Properties } from "../codec/packets.ts";
import type { Logger } from "../log.ts";
import { compact, isExpired } from "./messages.ts";
import type { StoredMessage } from "./model.ts";
import type { Persistence } from "./persistence.ts";
import type { ClusterLink } from "./ports/cluster.ts";
import { retainedCost, type RetainedIndex } from "./retained.ts";
import type { BrokerStats } from "./stats.ts";
import { isSysTopic } from "./sys_topic.ts";

/** The bounds of the retained set; 0 = unlimited. */
export interface RetainedLimits {
  maxRetainedMessages: number;
  maxRetainedBytes: number;
}

/** One log line per interval at most about refused retained messages, with the count. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/** Keeps this node's retained messages (see the module comment). */
export class Retainer {
  readonly index: RetainedIndex;
  readonly #persistence: Persistence;
  readonly #stats: BrokerStats;
  readonly #cluster: ClusterLink | undefined;
  /**
   * The retained messages that carry an expiry, by topic: the sweep walks these alone, not the
   * whole index. An entry whose topic has since been given another message is simply dropped.
   */
  readonly #expiring = new Map<string, StoredMessage>();
  readonly #limits: RetainedLimits;
  readonly #log: Logger | undefined;
  /** Retained messages not stored because of the limits, since start. */
  refused = 0;
  #refusalLoggedAt = -Infinity;

  constructor(
    index: RetainedIndex,
    persistence: Persistence,
    stats: BrokerStats,
    cluster: ClusterLink | undefined,
    limits: RetainedLimits = { maxRetainedMessages: 0, maxRetainedBytes: 0 },
    log?: Logger,
  ) {
    this.index = index;
    this.#persistence = persistence;
    this.#stats = stats;
    this.#cluster = cluster;
    this.#limits = limits;
    this.#log = log;
  }

  /**
   * Whether retained message `msg` fits the limits. Clearing always does, and so does replacing a
   * topic's message as far as the count goes.
   */
  admits(msg: { topic: string; payload: Uint8Array; properties?: Properties }): boolean {
    const topic = msg.topic;
    if (msg.payload.byteLength === 0 || isSysTopic(topic)) return true;
    const { maxRetainedMessages: maxCount, maxRetainedBytes: maxBytes } = this.#limits;
    if (maxCount === 0 && maxBytes === 0) return true;
    const old = this.index.get(topic);
    if (old === null && maxCount > 0 && this.index.limitedSize >= maxCount) return false;
    if (maxBytes === 0) return true;
    const freed = old === null ? 0 : retainedCost(old);
    return this.index.cost - freed + retainedCost(msg) <= maxBytes;
  }

  /**
   * Applies a retained PUBLISH accepted on this node. Returns false when the limits kept it from
   * being stored (it is still delivered as any message).
   */
  apply(msg: StoredMessage): boolean {
    if (!this.admits(msg)) {
      this.noteRefused(msg.topic);
      return false;
    }
    const stored = this.#cluster !== undefined || !isSysTopic(msg.topic);
    if (msg.payload.byteLength === 0) {
      // MQTT-3.3.1-10/11: an empty retained payload deletes, and is not stored.
      if (this.index.get(msg.topic)) {
        this.index.set(msg.topic, null);
        if (stored) this.#persistence.setRetained(msg.topic, null);
      }
    } else {
      compact(msg);
      this.index.set(msg.topic, msg);
      if (stored) this.#persistence.setRetained(msg.topic, msg);
      this.#track(msg);
    }
    this.#stats.retained = this.index.size;
    this.#cluster?.retainedChanged(msg.topic, msg.payload.byteLength === 0 ? null : msg);
    return true;
  }

  /** Counts a retained message the limits refused; logs at most one line per 10 s. */
  noteRefused(topic: string): void {
    this.refused++;
    const now = Date.now();
    if (now - this.#refusalLoggedAt < REFUSAL_LOG_INTERVAL_MS) return;
    this.#refusalLoggedAt = now;
    const l = this.#limits;
    this.#log?.warn(
      `retained message for ${topic} not stored: the retained set is full ` +
        `(${this.index.limitedSize} messages, ${this.index.cost} bytes counted; ` +
        `mqttwk.broker.max-retained-messages ${l.maxRetainedMessages}, ` +
        `max-retained-bytes ${l.maxRetainedBytes}; ${this.refused} refused so far)`,
    );
  }

  /** A retained message was set (or, with null, deleted) on another node: the store is shared. */
  fromPeer(topic: string, msg: StoredMessage | null): void {
    this.index.set(topic, msg);
    if (msg !== null) this.#track(msg);
    this.#stats.retained = this.index.size;
  }

  /**
   * A retained message loaded from the store at start: kept unless it expired while the broker
   * was down, in which case it leaves the store too.
   */
  restore(msg: StoredMessage, now: number): void {
    // A single node's `$SYS` values of an earlier run (or version) are stale: gone.
    const expired = isExpired(msg, now);
    if (expired || (this.#cluster === undefined && isSysTopic(msg.topic))) {
      if (expired) this.#stats.expired++;
      this.#persistence.setRetained(msg.topic, null);
      return;
    }
    this.index.set(msg.topic, msg);
    this.#track(msg);
  }

  /**
   * Removes the retained messages whose expiry has passed, from the index and the store (called
   * once a second). Every node of a cluster sweeps its own index; the store's delete is the same
   * whichever node does it. Until swept, an expired message is already never delivered
   * (Delivery.deliver checks it).
   */
  sweep(now: number): void {
    if (this.#expiring.size === 0) return;
    for (const [topic, msg] of this.#expiring) {
      if (this.index.get(topic) !== msg) this.#expiring.delete(topic);
      else if (isExpired(msg, now)) {
        this.#expiring.delete(topic);
        this.index.set(topic, null);
        this.#persistence.setRetained(topic, null);
        this.#stats.expired++;
      }
    }
    this.#stats.retained = this.index.size;
  }

  #track(msg: StoredMessage): void {
    if (msg.expiresAt !== undefined) this.#expiring.set(msg.topic, msg);
  }
}
