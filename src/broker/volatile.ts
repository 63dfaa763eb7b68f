/**
 * Volatile deliveries: a QoS 1 message sent at once to an online persistent session is not
 * written to the store straight away. The publisher's PUBACK waits until every such delivery is
 * either acknowledged by its subscriber (then nothing is ever written) or, after the grace
 * period, written and committed. Nothing acknowledged can be lost: until the publisher has its
 * PUBACK it resends after a crash. Healthy subscribers thus cost the store nothing.
 *
 * A cluster node does the same for the messages it reads from its own stream (other nodes'
 * publishers, ClusterHost.deliverHeld): there the stream entry's XACK is what waits, and until
 * it is sent the entry is re-read after a crash, or drained by the node taking this one over.
 */
import type { OutboundEntry, StoredMessage } from "./model.ts";
import type { Session } from "./session.ts";

/** How long a delivery may stay unwritten while its subscriber has not acknowledged it. */
export const VOLATILE_GRACE_MS = 25;

const PENDING = Symbol("volatileDeliveries");
const WAITER = Symbol("publisherAck");
const ACKABLE = Symbol("ackWaitsForDeliveries");
type Tracked = StoredMessage & { [PENDING]?: number; [WAITER]?: () => void; [ACKABLE]?: true };

/** A held delivery's session and when it was held. */
interface Held {
  s: Session;
  at: number;
}

export class VolatileDeliveries {
  /**
   * Held deliveries in the order they were held, so the oldest come first. An acknowledged one
   * leaves at once: a separate queue of hold times used to keep every acknowledged message (its
   * payload and read buffer too) alive until the queue was trimmed ~1,000 deliveries later, long
   * enough for each to be promoted out of the young generation, and a cluster node then needed
   * a full collection every 1.5 s at 5,000 msg/s.
   */
  readonly #held = new Map<OutboundEntry, Held>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #write: (s: Session, e: OutboundEntry) => void;

  /** `write` puts an entry into the store (the caller's next commit makes it durable). */
  constructor(write: (s: Session, e: OutboundEntry) => void) {
    this.#write = write;
  }

  /**
   * Marks a client's own QoS 1 PUBLISH (or one read from this node's stream): its ack can wait
   * for its deliveries. Other messages from peers, Kafka or wills rely on the store flush alone
   * and are never held.
   */
  static markAckable(msg: StoredMessage): void {
    (msg as Tracked)[ACKABLE] = true;
  }

  /** Ends the routing of the PUBLISH: its later deliveries (e.g. as retained) are written. */
  static unmark(msg: StoredMessage): void {
    (msg as Tracked)[ACKABLE] = undefined;
  }

  static isAckable(msg: StoredMessage): boolean {
    return (msg as Tracked)[ACKABLE] === true;
  }

  hold(s: Session, e: OutboundEntry): void {
    this.#held.set(e, { s, at: Date.now() });
    const m = e.message as Tracked;
    m[PENDING] = (m[PENDING] ?? 0) + 1;
    this.#timer ??= setTimeout(() => this.#age(), VOLATILE_GRACE_MS);
  }

  /** The subscriber acknowledged `e`; returns false if it was not held (it is in the store). */
  acknowledged(e: OutboundEntry): boolean {
    if (!this.#held.delete(e)) return false;
    settle(e.message);
    return true;
  }

  /** Settles a session's held deliveries as it goes offline (`write`) or away (drop). */
  settleSession(s: Session, write: boolean): void {
    if (this.#held.size === 0) return;
    for (const e of s.inflight.values()) {
      if (this.#held.get(e)?.s !== s) continue;
      if (write) this.#persist(e, s);
      else {
        this.#held.delete(e);
        settle(e.message);
      }
    }
  }

  /** Runs `ack` once the message's held deliveries are settled (at once if it has none). */
  whenSettled(msg: StoredMessage, ack: () => void): void {
    const m = msg as Tracked;
    if (m[PENDING]) m[WAITER] = ack;
    else ack();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Writes deliveries that stayed unacknowledged past the grace period. */
  #age(): void {
    this.#timer = undefined;
    const limit = Date.now() - VOLATILE_GRACE_MS;
    for (const [e, h] of this.#held) {
      if (h.at > limit) {
        const next = h.at + VOLATILE_GRACE_MS - Date.now();
        this.#timer = setTimeout(() => this.#age(), next > 1 ? next : 1);
        return;
      }
      this.#persist(e, h.s);
    }
  }

  #persist(e: OutboundEntry, s: Session): void {
    this.#held.delete(e);
    this.#write(s, e);
    settle(e.message);
  }
}

function settle(msg: StoredMessage): void {
  const m = msg as Tracked;
  const n = (m[PENDING] ?? 1) - 1;
  m[PENDING] = n;
  if (n === 0 && m[WAITER]) {
    const w = m[WAITER];
    m[WAITER] = undefined;
    w();
  }
}
