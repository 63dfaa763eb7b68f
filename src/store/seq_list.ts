/**
 * A session's outbound entries in the memory store, by sequence number: an array in seq order
 * with a moving head instead of a Map.
 *
 * The memory store gains and loses one entry per QoS 1/2 delivery to a persistent session. A
 * Map that does so replaces its hash table every few insertions, and V8 links each replaced
 * table to its successor; once a full collection has moved the tables to the old generation,
 * that chain keeps every new table, entry and message alive through young collections, so every
 * delivery got promoted until the next full collection (see packet_id_table.ts, which fixed the
 * same in the broker's own in-flight tables). An array whose slots are cleared holds nothing
 * that way.
 *
 * Entries come in rising seq order (the session numbers its deliveries) and mostly leave in the
 * same order (MQTT 4.6), so adding is a push and removing is a binary search; the holes left
 * before the first live entry are dropped as the head moves past them, and the array is
 * compacted when holes pile up behind one entry that stays.
 */
import { forget, liveSlots } from "../broker/packet_id_table.ts";

/** Entries by rising seq: push, O(1) removal of the oldest, binary search for the rest. */
export class SeqList<T extends { seq: number }> {
  #items: (T | undefined)[] = [];
  #head = 0;
  #live = 0;

  /** Live entries. */
  get size(): number {
    return this.#live;
  }

  /** Slots held, holes included (tests: the list does not grow without bound). */
  get kept(): number {
    return this.#items.length;
  }

  /** Adds `entry`, or replaces the live entry with the same seq. */
  set(entry: T): void {
    const items = this.#items;
    const last = items.length - 1;
    // The last slot is always live: delete() trims holes off the end.
    if (last < this.#head || items[last]!.seq < entry.seq) {
      items.push(entry);
      this.#live++;
      return;
    }
    const i = this.#find(entry.seq);
    if (i >= 0) {
      items[i] = entry;
      return;
    }
    // Out of order (never from the broker, which numbers in order): insert where it belongs.
    items.splice(~i, 0, entry);
    this.#live++;
  }

  /** Removes the entry with `seq`; false if there was none. */
  delete(seq: number): boolean {
    const i = this.#find(seq);
    if (i < 0) return false;
    const items = this.#items;
    items[i] = undefined;
    this.#live--;
    if (this.#live === 0) {
      this.#items = [];
      this.#head = 0;
      return true;
    }
    while (items[this.#head] === undefined) this.#head++;
    while (items[items.length - 1] === undefined) items.pop();
    // Slots before the head are holes too: the array is rebuilt once holes outnumber entries.
    if (items.length > 2 * this.#live + 32) this.#compact();
    return true;
  }

  /** Live entries in seq order (a copy). */
  values(): T[] {
    return liveSlots(this.#items, this.#head);
  }

  /** Index of the live entry with `seq`, or ~(where it would go). Holes are skipped over. */
  #find(seq: number): number {
    const items = this.#items;
    // The oldest, as a compliant client acknowledges in order.
    if (items[this.#head]?.seq === seq) return this.#head;
    let lo = this.#head;
    let hi = items.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      // A hole has no seq: look at the nearest live slot at or after it.
      let j = mid;
      while (j <= hi && items[j] === undefined) j++;
      if (j > hi) {
        hi = mid - 1;
        continue;
      }
      const s = items[j]!.seq;
      if (s === seq) return j;
      if (s < seq) lo = j + 1;
      else hi = mid - 1;
    }
    return ~lo;
  }

  #compact(): void {
    const old = this.#items;
    this.#items = this.values();
    this.#head = 0;
    forget(old);
  }
}
