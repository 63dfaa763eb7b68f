/**
 * Volatile deliveries: a QoS 1 message sent at once to an online persistent session, or queued
 * behind its full in-flight window while it keeps reading, is not written to the store straight
 * away. The publisher's PUBACK waits until every such delivery is either acknowledged by its
 * subscriber (then nothing is ever written) or, after the grace period, written and committed.
 * Nothing acknowledged can be lost: until the publisher has its PUBACK it resends after a crash.
 * Healthy subscribers thus cost the store nothing.
 *
 * A cluster node does the same for the messages it reads from its own stream (other nodes'
 * publishers, ClusterHost.deliverHeld): there the stream entry's XACK is what waits, and until
 * it is sent the entry is re-read after a crash, or drained by the node taking this one over.
 */
import {
  type OutboundEntry,
  PENDING_DELIVERIES,
  type PublishAckTarget,
  PUBLISHER_ACK,
  PUBLISHER_ACK_ID,
  type StoredMessage,
} from "./model.ts";
import type { Session } from "./session.ts";
import { forget, ringSize } from "./packet_id_table.ts";
import { turnNow } from "./turn_clock.ts";

/** How long a delivery may stay unwritten while its subscriber has not acknowledged it. */
export const VOLATILE_GRACE_MS = 25;
/** Places in the smallest ring of held deliveries. */
const MIN_RING = 64;
/** A ring drained empty is replaced by the smallest one above this size (8 places per KiB). */
const MAX_KEPT_RING = 65536;

/**
 * The message being routed whose ack can wait for its deliveries (markAckable), else null. A
 * variable, not a mark on the message: routing is synchronous, and a mark added to the message
 * would give it a property store of its own.
 */
let ackableNow: StoredMessage | null = null;

export class VolatileDeliveries {
  /**
   * Held deliveries in the order they were held, with their sessions and when they were held:
   * parallel rings of a power-of-two size, #count places from #head on, one per hold. A settled
   * one stays as null (so an acknowledged message is not kept alive) until the head passes it.
   * Each held entry carries its place, so settling one is a field read and two stores. Not a Map
   * or WeakMap: V8 links each hash table a Map outgrows or shrinks from to the next, and once one
   * of them is in the old generation that chain keeps every later one and all it held alive
   * through young collections (see packet_id_table.ts); a WeakMap's set and delete took half a
   * microsecond per QoS 1 delivery, a quarter of a fan-out's CPU. Rings, not arrays pushed at the
   * end: each growth of an array leaves its old backing store behind, which does the same (see
   * `forget`); a ring is replaced only to grow, and then emptied.
   */
  #entries: (OutboundEntry | null)[] = new Array(MIN_RING).fill(null);
  #sessions: (Session | null)[] = new Array(MIN_RING).fill(null);
  #times = new Float64Array(MIN_RING);
  #head = 0;
  #count = 0;
  /** Held and not yet settled. */
  #live = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #write: (s: Session, e: OutboundEntry) => void;
  /** Made once: an arrow in hold() would make V8 allocate a context on every hold. */
  readonly #ageNow = () => this.#age();

  /** `write` puts an entry into the store (the caller's next commit makes it durable). */
  constructor(write: (s: Session, e: OutboundEntry) => void) {
    this.#write = write;
  }

  /**
   * Marks a client's own QoS 1 PUBLISH (or one read from this node's stream) while it is routed:
   * its ack can wait for its deliveries. Other messages from peers, Kafka or wills rely on the
   * store flush alone and are never held. A message routed inside another's routing (none is
   * today) would end the outer mark early: its later deliveries are then written, which is safe.
   */
  static markAckable(msg: StoredMessage): void {
    ackableNow = msg;
  }

  /** Ends the routing of the PUBLISH: its later deliveries (e.g. as retained) are written. */
  static unmark(msg: StoredMessage): void {
    if (ackableNow === msg) ackableNow = null;
  }

  static isAckable(msg: StoredMessage): boolean {
    return msg === ackableNow;
  }

  hold(s: Session, e: OutboundEntry): void {
    if (this.#count === this.#entries.length) this.#regrow();
    const at = (this.#head + this.#count) & (this.#entries.length - 1);
    e.heldAt = at;
    this.#entries[at] = e;
    this.#sessions[at] = s;
    // One clock read per turn (a fan-out holds thousands in one; the grace is 25 ms).
    this.#times[at] = turnNow();
    this.#count++;
    this.#live++;
    const m = e.message;
    m[PENDING_DELIVERIES] = (m[PENDING_DELIVERIES] ?? 0) + 1;
    this.#timer ??= setTimeout(this.#ageNow, VOLATILE_GRACE_MS);
  }

  /** The subscriber acknowledged `e`; returns false if it was not held (it is in the store). */
  acknowledged(e: OutboundEntry): boolean {
    const i = this.#slot(e);
    if (i < 0) return false;
    this.#release(e, i);
    settle(e.message);
    return true;
  }

  /** Whether `e` is held unwritten (not yet acknowledged, dropped or written). */
  holds(e: OutboundEntry): boolean {
    return this.#slot(e) >= 0;
  }

  /**
   * Settles a session's held deliveries, in flight and queued, as it goes offline (`write`) or
   * away (drop).
   */
  settleSession(s: Session, write: boolean): void {
    if (this.#live === 0) return;
    const one = (e: OutboundEntry) => {
      const i = this.#slot(e);
      if (i < 0 || this.#sessions[i] !== s) return;
      if (write) this.#persist(i);
      else {
        this.#release(e, i);
        settle(e.message);
      }
    };
    for (const e of s.inflight.values()) one(e);
    s.forEachQueued(one);
  }

  /** Runs `ack` once the message's held deliveries are settled (at once if it has none). */
  whenSettled(msg: StoredMessage, ack: () => void): void {
    const m = msg;
    if (m[PENDING_DELIVERIES]) m[PUBLISHER_ACK] = ack;
    else ack();
  }

  /**
   * whenSettled for a publisher's ack: `to.ackPublish(packed)`, without a closure; at once when
   * there is no message whose deliveries it waits for.
   */
  ackWhenSettled(msg: StoredMessage | undefined, to: PublishAckTarget, packed: number): void {
    if (msg !== undefined && msg[PENDING_DELIVERIES]) {
      msg[PUBLISHER_ACK] = to;
      msg[PUBLISHER_ACK_ID] = packed;
    } else to.ackPublish(packed);
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Where `e` is held in the arrays, or -1 (not held, or a copy of a held entry). */
  #slot(e: OutboundEntry): number {
    const at = e.heldAt;
    return at !== undefined && this.#entries[at] === e ? at : -1;
  }

  /** Writes deliveries that stayed unacknowledged past the grace period. */
  #age(): void {
    this.#timer = undefined;
    const limit = Date.now() - VOLATILE_GRACE_MS;
    const entries = this.#entries;
    const times = this.#times;
    const mask = entries.length - 1;
    while (this.#count > 0) {
      const at = this.#head;
      if (entries[at] === null) {
        this.#head = (at + 1) & mask;
        this.#count--;
        continue;
      }
      if (times[at] > limit) break;
      this.#persist(at); // moves the head past it
    }
    if (this.#count === 0) {
      this.#head = 0;
      // A burst's ring is not kept for good.
      if (entries.length > MAX_KEPT_RING) this.#reset();
      return;
    }
    const next = times[this.#head] + VOLATILE_GRACE_MS - Date.now();
    this.#timer = setTimeout(this.#ageNow, next > 1 ? next : 1);
  }

  /**
   * A full ring: its live holds, in order, into rings twice their number (at least the smallest),
   * each entry told its new place; the old rings are emptied (see `forget`).
   */
  #regrow(): void {
    const entries = this.#entries;
    const sessions = this.#sessions;
    const times = this.#times;
    const mask = entries.length - 1;
    const size = ringSize(this.#live, MIN_RING);
    const e2: (OutboundEntry | null)[] = new Array(size).fill(null);
    const s2: (Session | null)[] = new Array(size).fill(null);
    const t2 = new Float64Array(size);
    let n = 0;
    for (let k = 0; k < this.#count; k++) {
      const at = (this.#head + k) & mask;
      const e = entries[at];
      if (e === null) continue;
      e.heldAt = n;
      e2[n] = e;
      s2[n] = sessions[at];
      t2[n++] = times[at];
    }
    this.#entries = e2;
    this.#sessions = s2;
    this.#times = t2;
    this.#head = 0;
    this.#count = n;
    forget(entries);
    forget(sessions);
  }

  #reset(): void {
    forget(this.#entries);
    forget(this.#sessions);
    this.#entries = new Array(MIN_RING).fill(null);
    this.#sessions = new Array(MIN_RING).fill(null);
    this.#times = new Float64Array(MIN_RING);
  }

  #persist(i: number): void {
    const e = this.#entries[i]!;
    const s = this.#sessions[i]!;
    this.#release(e, i);
    this.#write(s, e);
    settle(e.message);
  }

  /** Forgets a held delivery: it no longer keeps its entry (and message) alive. */
  #release(e: OutboundEntry, i: number): void {
    e.heldAt = undefined;
    this.#entries[i] = null;
    this.#sessions[i] = null;
    this.#live--;
    if (i !== this.#head) return;
    // Subscribers acknowledge in order (MQTT 4.6): the head follows, and the ring stays small.
    const entries = this.#entries;
    const mask = entries.length - 1;
    while (this.#count > 0 && entries[this.#head] === null) {
      this.#head = (this.#head + 1) & mask;
      this.#count--;
    }
  }
}

function settle(msg: StoredMessage): void {
  const m = msg;
  const n = (m[PENDING_DELIVERIES] ?? 1) - 1;
  m[PENDING_DELIVERIES] = n;
  if (n === 0 && m[PUBLISHER_ACK]) {
    const w = m[PUBLISHER_ACK];
    m[PUBLISHER_ACK] = undefined;
    if (typeof w === "function") w();
    else w.ackPublish(m[PUBLISHER_ACK_ID]!);
  }
}
