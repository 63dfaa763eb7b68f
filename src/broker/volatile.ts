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
import { forget } from "./packet_id_table.ts";
import { turnNow } from "./turn_clock.ts";

/** How long a delivery may stay unwritten while its subscriber has not acknowledged it. */
export const VOLATILE_GRACE_MS = 25;

const PENDING = Symbol("volatileDeliveries");
const WAITER = Symbol("publisherAck");
const ACKABLE = Symbol("ackWaitsForDeliveries");
type Tracked = StoredMessage & { [PENDING]?: number; [WAITER]?: () => void; [ACKABLE]?: true };

/** An entry while it is held: its position in the FIFO (see VolatileDeliveries). */
type HeldEntry = OutboundEntry & { [HELD]?: number };
const HELD = Symbol("volatilePosition");

export class VolatileDeliveries {
  /**
   * Held deliveries in the order they were held, with their sessions and when they were held,
   * the oldest from #head on: parallel arrays, one slot per hold. A settled one stays as null (so
   * an acknowledged message is not kept alive) until the head passes it. Each held entry carries
   * its position (#base counts the slots dropped from the front), so settling one is a field read
   * and two stores. Not a Map or WeakMap: V8 links each hash table a Map outgrows or shrinks from
   * to the next, and once one of them is in the old generation that chain keeps every later one
   * and all it held alive through young collections (see packet_id_table.ts); a WeakMap's set and
   * delete took half a microsecond per QoS 1 delivery, a quarter of a fan-out's CPU.
   */
  #entries: (HeldEntry | null)[] = [];
  #sessions: (Session | null)[] = [];
  #times: number[] = [];
  #head = 0;
  #base = 0;
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
    // Only a marked message is written to: adding the (absent) key to any other message would
    // give it a property store of its own, 40 bytes per QoS 0 message.
    if ((msg as Tracked)[ACKABLE] !== undefined) (msg as Tracked)[ACKABLE] = undefined;
  }

  static isAckable(msg: StoredMessage): boolean {
    return (msg as Tracked)[ACKABLE] === true;
  }

  hold(s: Session, e: OutboundEntry): void {
    (e as HeldEntry)[HELD] = this.#base + this.#entries.length;
    this.#entries.push(e);
    this.#sessions.push(s);
    // One clock read per turn (a fan-out holds thousands in one; the grace is 25 ms).
    this.#times.push(turnNow());
    this.#count++;
    const m = e.message as Tracked;
    m[PENDING] = (m[PENDING] ?? 0) + 1;
    this.#timer ??= setTimeout(() => this.#age(), VOLATILE_GRACE_MS);
  }

  /** The subscriber acknowledged `e`; returns false if it was not held (it is in the store). */
  acknowledged(e: OutboundEntry): boolean {
    const i = this.#slot(e);
    if (i < 0) return false;
    this.#release(e, i);
    settle(e.message);
    return true;
  }

  /** Settles a session's held deliveries as it goes offline (`write`) or away (drop). */
  settleSession(s: Session, write: boolean): void {
    if (this.#count === 0) return;
    for (const e of s.inflight.values()) {
      const i = this.#slot(e);
      if (i < 0 || this.#sessions[i] !== s) continue;
      if (write) this.#persist(i);
      else {
        this.#release(e, i);
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

  /** Where `e` is held in the arrays, or -1 (not held, or a copy of a held entry). */
  #slot(e: HeldEntry): number {
    const at = e[HELD];
    if (at === undefined) return -1;
    const i = at - this.#base;
    return i >= this.#head && i < this.#entries.length && this.#entries[i] === e ? i : -1;
  }

  /** Writes deliveries that stayed unacknowledged past the grace period. */
  #age(): void {
    this.#timer = undefined;
    const limit = Date.now() - VOLATILE_GRACE_MS;
    const entries = this.#entries;
    const times = this.#times;
    let i = this.#head;
    for (; i < entries.length; i++) {
      if (entries[i] === null) continue;
      if (times[i] > limit) break;
      this.#persist(i);
    }
    if (i >= entries.length) {
      this.#base += entries.length;
      this.#entries = [];
      this.#sessions = [];
      this.#times = [];
      this.#head = 0;
      return;
    }
    this.#head = i;
    if (i > 1024 && i * 2 > entries.length) {
      this.#base += i;
      const sessions = this.#sessions;
      this.#entries = entries.slice(i);
      this.#sessions = sessions.slice(i);
      this.#times = times.slice(i);
      this.#head = 0;
      forget(entries);
      forget(sessions);
    }
    const next = this.#times[this.#head] + VOLATILE_GRACE_MS - Date.now();
    this.#timer = setTimeout(() => this.#age(), next > 1 ? next : 1);
  }

  #persist(i: number): void {
    const e = this.#entries[i]!;
    const s = this.#sessions[i]!;
    this.#release(e, i);
    this.#write(s, e);
    settle(e.message);
  }

  /** Forgets a held delivery: it no longer keeps its entry (and message) alive. */
  #release(e: HeldEntry, i: number): void {
    e[HELD] = undefined;
    this.#entries[i] = null;
    this.#sessions[i] = null;
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
