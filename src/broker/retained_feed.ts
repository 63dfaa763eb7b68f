/**
 * The retained messages a SUBSCRIBE must send, fed to the client as fast as it reads them. A
 * burst of 100,000 retained messages written at once would overflow the outbound buffer and shed
 * its QoS 0 copies; instead the feed holds a cursor per granted filter and Delivery.pump draws
 * from it whenever the client has room, like the session's queue.
 */
import type { QoS } from "../codec/packets.ts";
import type { StoredMessage } from "./model.ts";
import type { RetainedIndex } from "./retained.ts";

interface Cursor {
  filter: string;
  qos: QoS;
  subscriptionIds: number[] | null;
  walk: Iterator<StoredMessage, void, undefined>;
}

export class RetainedFeed {
  /** By filter: subscribing to a filter again restarts its walk instead of adding another. */
  readonly #cursors = new Map<string, Cursor>();
  readonly #allowed: (topic: string) => boolean;
  /** Taken from a cursor but not sent yet (the in-flight window was full). */
  #held: StoredMessage | null = null;
  /** The QoS `#held` is delivered with. */
  qos: QoS = 0;
  /** The Subscription Identifier `#held` is delivered with (MQTT 5), or null. */
  subscriptionIds: number[] | null = null;

  /** `allowed`: whether the subscriber may receive a topic (checked when each one is sent). */
  constructor(allowed: (topic: string) => boolean) {
    this.#allowed = allowed;
  }

  /**
   * Starts (or restarts) sending the retained messages of `filter`, at most at `qos`, with the
   * subscription's identifier if it has one (3.8.2.1.2).
   */
  add(index: RetainedIndex, filter: string, qos: QoS, subscriptionId = 0): void {
    this.#cursors.delete(filter);
    const subscriptionIds = subscriptionId !== 0 ? [subscriptionId] : null;
    this.#cursors.set(filter, { filter, qos, subscriptionIds, walk: index.iterate(filter) });
  }

  /** Stops the walk of `filter` (unsubscribed). */
  remove(filter: string): void {
    this.#cursors.delete(filter);
    if (this.#held && this.#cursors.size === 0) this.#held = null;
  }

  /** Walks not finished yet (structure checks). */
  get pending(): number {
    return this.#cursors.size;
  }

  /**
   * The next message due (its QoS in `qos`) without taking it, or null when every walk has
   * ended.
   */
  peek(): StoredMessage | null {
    if (this.#held) return this.#held;
    for (const c of this.#cursors.values()) {
      while (true) {
        const r = c.walk.next();
        if (r.done) break;
        const m = r.value;
        if (!this.#allowed(m.topic)) continue;
        // MQTT-3.3.1-6 / -8: at min(message QoS, granted QoS).
        this.qos = (m.qos < c.qos ? m.qos : c.qos) as QoS;
        this.subscriptionIds = c.subscriptionIds;
        return this.#held = m;
      }
      this.#cursors.delete(c.filter);
    }
    return null;
  }

  /** Takes the message peek() returned. */
  take(): void {
    this.#held = null;
  }
}
