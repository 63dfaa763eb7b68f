/**
 * The two deadlines every connection has, kept without a timer per connection: the connect
 * timeout (no CONNECT yet) and the keep-alive (no packet for 1.5 x its keep-alive). A timer
 * costs ~300 bytes while it waits, which with tens of thousands of idle connections was the
 * largest part of their memory after the socket itself, and two timer calls per connect.
 */

/**
 * Where an item sits in a FixedDelay or a KeepaliveWheel, kept on the item itself so that it can
 * be taken out at once when its connection moves on or closes: a closed connection left in a
 * list until its deadline came would keep its Client, socket and session alive that long (up to
 * 1.5 x 65,535 s for a keep-alive), and a connect storm of short connections, like a fuzzer's,
 * would pile them up by the hundred thousand. An item is in at most one list at a time (a
 * connection leaves the connect deadline before its keep-alive starts).
 */
export interface Timed {
  /** KeepaliveWheel: the slot the item is listed in, 0 when none. */
  timerSlot: number;
  /** Its place: in the slot's list (KeepaliveWheel), or its sequence number (FixedDelay). */
  timerIndex: number;
}

/**
 * Deadlines of one fixed delay, in the order they were set: that is also the order they fall
 * due, so one timer (for the earliest) serves all of them. An entry whose connection moved on is
 * blanked at once (`settle`, by its sequence number); when none is left waiting, the lists are
 * dropped and the timer, if set, finds nothing when it fires. It is not cleared: with a few
 * connects in flight the count touches zero after nearly every CONNECT, and a timer set again
 * each time would cost what one per connection did.
 */
export class FixedDelay<T extends Timed> {
  readonly delayMs: number;
  /** The deadline of `item` came, and it had not settled. */
  readonly #expired: (item: T) => void;
  #items: (T | undefined)[] = [];
  #dueAt: number[] = [];
  /** The sequence number of #items[0]: an item's index is its sequence number minus this. */
  #base = 0;
  #head = 0;
  /** Entries added and not yet settled. */
  #waiting = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(delayMs: number, expired: (item: T) => void) {
    this.delayMs = delayMs;
    this.#expired = expired;
  }

  /** Items waiting for their deadline. */
  get size(): number {
    return this.#waiting;
  }

  /** `item` falls due `delayMs` from now, unless it settles first. */
  add(item: T, now = Date.now()): void {
    item.timerIndex = this.#base + this.#items.length;
    this.#items.push(item);
    this.#dueAt.push(now + this.delayMs);
    this.#waiting++;
    if (this.#timer === undefined) this.#arm(now);
  }

  /** `item` no longer waits (it moved on or closed); nothing when it is not listed. */
  settle(item: T): void {
    const i = item.timerIndex - this.#base;
    if (i < this.#head || i >= this.#items.length || this.#items[i] !== item) return;
    this.#items[i] = undefined;
    if (--this.#waiting > 0) return;
    // Nothing waits: whatever is still listed has moved on.
    this.#reset();
  }

  /** Forgets every deadline (the broker is closing). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#reset();
  }

  #reset(): void {
    this.#base += this.#items.length;
    this.#items = [];
    this.#dueAt = [];
    this.#head = 0;
    this.#waiting = 0;
  }

  #arm(now: number): void {
    if (this.#head === this.#items.length) return;
    const wait = this.#dueAt[this.#head] - now;
    this.#timer = setTimeout(() => this.#fire(), wait > 0 ? wait : 0);
  }

  #fire(): void {
    this.#timer = undefined;
    const now = Date.now();
    const items = this.#items;
    const dueAt = this.#dueAt;
    while (this.#head < items.length && dueAt[this.#head] <= now) {
      const item = items[this.#head];
      items[this.#head] = undefined;
      this.#head++;
      if (item === undefined) continue;
      this.#waiting--;
      this.#expired(item);
      // stop() may have emptied the lists.
      if (this.#items !== items) return;
    }
    if (this.#head === items.length) {
      this.#reset();
      return;
    }
    if (this.#head > 1024 && this.#head * 2 > items.length) {
      this.#items = items.slice(this.#head);
      this.#dueAt = dueAt.slice(this.#head);
      this.#base += this.#head;
      this.#head = 0;
    }
    this.#arm(now);
  }
}

/** Granularity of keep-alive checks (ms): a silent client is closed at most this much late. */
export const KEEPALIVE_SLOT_MS = 250;

/**
 * Keep-alive deadlines in slots of KEEPALIVE_SLOT_MS: one timer runs while any client has a
 * keep-alive. A client is checked once per keep-alive period (when its deadline's slot comes,
 * it is closed or put in the slot of its new deadline), not on every packet it sends. A client
 * that closes is taken out at once (`remove`).
 */
export class KeepaliveWheel<T extends Timed> {
  /**
   * The deadline of `item` came (`now`, ms since epoch): returns when to check it again, or 0
   * when it needs no more checks (closed, or no keep-alive any more).
   */
  readonly #check: (item: T, now: number) => number;
  /** Clients by the slot (deadline / KEEPALIVE_SLOT_MS, rounded up) they are checked in. */
  #slots = new Map<number, T[]>();
  #count = 0;
  /** Slots up to this one have been checked. */
  #done = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(check: (item: T, now: number) => number) {
    this.#check = check;
  }

  /** Clients waiting for a check. */
  get size(): number {
    return this.#count;
  }

  /** Checks `item` at `dueAt` (ms since epoch) or up to KEEPALIVE_SLOT_MS later. */
  add(item: T, dueAt: number): void {
    if (this.#timer === undefined) {
      this.#done = Math.floor(Date.now() / KEEPALIVE_SLOT_MS);
      this.#timer = setInterval(() => this.#sweep(), KEEPALIVE_SLOT_MS);
    }
    // Never a slot already checked: it would wait for a check that never comes.
    const slot = Math.max(Math.ceil(dueAt / KEEPALIVE_SLOT_MS), this.#done + 1);
    const list = this.#slots.get(slot);
    item.timerSlot = slot;
    if (list) {
      item.timerIndex = list.length;
      list.push(item);
    } else {
      item.timerIndex = 0;
      this.#slots.set(slot, [item]);
    }
    this.#count++;
  }

  /** `item` needs no more checks (its connection closed); nothing when it is not listed. */
  remove(item: T): void {
    const slot = item.timerSlot;
    if (slot === 0) return;
    item.timerSlot = 0;
    const list = this.#slots.get(slot);
    const i = item.timerIndex;
    if (list === undefined || list[i] !== item) return;
    // The last one takes its place: no search, no shifting.
    const last = list.pop()!;
    if (last !== item) {
      list[i] = last;
      last.timerIndex = i;
    } else if (list.length === 0) this.#slots.delete(slot);
    this.#count--;
  }

  /** Forgets every client (the broker is closing). */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#slots.clear();
    this.#count = 0;
  }

  #sweep(): void {
    const now = Date.now();
    const upTo = Math.floor(now / KEEPALIVE_SLOT_MS);
    while (this.#done < upTo) {
      const slot = ++this.#done;
      const list = this.#slots.get(slot);
      if (list === undefined) continue;
      this.#slots.delete(slot);
      this.#count -= list.length;
      // Out of the wheel before any check runs: one may close others of the list.
      // Indexed: a for-of over an array allocates per item in code that is never optimized.
      for (let i = 0; i < list.length; i++) list[i].timerSlot = 0;
      for (let i = 0; i < list.length; i++) {
        const next = this.#check(list[i], now);
        if (next > 0) this.add(list[i], next);
      }
      if (this.#timer === undefined) return; // stopped meanwhile
    }
    if (this.#count === 0) this.stop();
  }
}
