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

/** A held delivery, its session and when it was held; `e` is null once it is settled. */
interface Held {
  e: OutboundEntry | null;
  s: Session | null;
  at: number;
}

export class VolatileDeliveries {
  /**
   * Held deliveries in the order they were held, the oldest from #head on. A settled one stays
   * in the array without its entry (so an acknowledged message is not kept alive), until the
   * head passes it. Not a Map: V8 links each hash table a Map outgrows or shrinks from to the
   * next, and once one of them is in the old generation that chain keeps every later one and
   * all it held alive through young collections (see packet_id_table.ts); a delivery per QoS 1
   * message comes and goes here.
   */
  #fifo: Held[] = [];
  #head = 0;
  /** The record of each held entry (weak: not a hash table with that chain). */
  readonly #held = new WeakMap<OutboundEntry, Held>();
  #count = 0;
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
    const h: Held = { e, s, at: Date.now() };
    this.#held.set(e, h);
    this.#fifo.push(h);
    this.#count++;
    const m = e.message as Tracked;
    m[PENDING] = (m[PENDING] ?? 0) + 1;
    this.#timer ??= setTimeout(() => this.#age(), VOLATILE_GRACE_MS);
  }

  /** The subscriber acknowledged `e`; returns false if it was not held (it is in the store). */
  acknowledged(e: OutboundEntry): boolean {
    const h = this.#held.get(e);
    if (h === undefined) return false;
    this.#release(h);
    settle(e.message);
    return true;
  }

  /** Settles a session's held deliveries as it goes offline (`write`) or away (drop). */
  settleSession(s: Session, write: boolean): void {
    if (this.#count === 0) return;
    for (const e of s.inflight.values()) {
      const h = this.#held.get(e);
      if (h === undefined || h.s !== s) continue;
      if (write) this.#persist(h);
      else {
        this.#release(h);
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
    const fifo = this.#fifo;
    let i = this.#head;
    for (; i < fifo.length; i++) {
      const h = fifo[i];
      if (h.e === null) continue;
      if (h.at > limit) break;
      this.#persist(h);
    }
    if (i >= fifo.length) {
      this.#fifo = [];
      this.#head = 0;
      return;
    }
    this.#head = i;
    if (i > 1024 && i * 2 > fifo.length) {
      this.#fifo = fifo.slice(i);
      this.#head = 0;
    }
    const next = fifo[i].at + VOLATILE_GRACE_MS - Date.now();
    this.#timer = setTimeout(() => this.#age(), next > 1 ? next : 1);
  }

  #persist(h: Held): void {
    const e = h.e!;
    const s = h.s!;
    this.#release(h);
    this.#write(s, e);
    settle(e.message);
  }

  /** Forgets a held delivery: it no longer keeps its entry (and message) alive. */
  #release(h: Held): void {
    this.#held.delete(h.e!);
    h.e = null;
    h.s = null;
    this.#count--;
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
