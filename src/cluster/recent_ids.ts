/**
 * Duplicate suppression for forwarded messages: a bounded set of recently seen message ids
 * (a resent XADD, a re-read stream entry, a dead node's stream drained after its sessions were
 * adopted here). Each id keeps the order in which it was first seen, so a takeover can tell
 * copies that arrived before it from those that came after.
 *
 * Two generations of at most max/2 ids each: a full current generation becomes the previous one
 * and the old previous one is dropped whole. So the newest max/2 to max ids are remembered, never
 * more than max, and nothing is ever deleted one by one: a Map churning one delete per insert was
 * over a quarter of a receiving node's CPU at 70k forwarded messages/s.
 *
 * Ids as nodes make them (broker/messages.ts: a prefix ending in "-", then a base-36 counter) are
 * kept as numbers (the counter and the prefix's index) in a hash table of typed arrays: no object
 * per id, no pointer to follow per entry passed, nothing for the garbage collector. A Map of
 * 50,000 string ids cost over a microsecond per message on a busy receiving node, mostly cache
 * misses and collections. Other ids go into a plain Map.
 */

/**
 * Longest counter (base-36 digits) splitId reports: 36^10 < 2^53, exact. Only counters below
 * MAX_COUNTER go into the table (a million messages a second for a hundred days).
 */
const MAX_DIGITS = 10;
/** Prefixes one generation tells apart by index (more: their ids are kept as strings). */
const PREFIXES = 1024;
const MAX_COUNTER = 2 ** 53 / PREFIXES;

/**
 * Open addressing with linear probing over (key, mark) pairs, keys non-negative integers below
 * 2^53, never deleted: a generation is dropped whole. At most half full.
 */
class NumberTable {
  /** Key at 2i, its mark at 2i + 1: one cache line per probe. */
  readonly #slots: Float64Array;
  readonly #mask: number;
  /** 32 - log2(capacity): a slot is the top bits of a multiplicative hash. */
  readonly #shift: number;

  constructor(entries: number) {
    let capacity = 16;
    let bits = 4;
    while (capacity < entries * 2) {
      capacity *= 2;
      bits++;
    }
    this.#shift = 32 - bits;
    this.#slots = new Float64Array(capacity * 2).fill(-1);
    this.#mask = capacity - 1;
  }

  /** Empties the table. */
  clear(): void {
    this.#slots.fill(-1);
  }

  #slot(key: number): number {
    const lo = key % 4294967296;
    const hi = (key - lo) / 4294967296;
    // Fibonacci hashing: the top bits of the product depend on every bit of the key.
    return Math.imul((lo | 0) ^ Math.imul(hi | 0, 0x85ebca6b), 0x9e3779b1) >>> this.#shift;
  }

  get(key: number): number | undefined {
    const slots = this.#slots;
    for (let i = this.#slot(key);; i = (i + 1) & this.#mask) {
      const k = slots[2 * i];
      if (k === key) return slots[2 * i + 1];
      if (k === -1) return undefined;
    }
  }

  /** Adds `key` (not present) with `mark`. */
  add(key: number, mark: number): void {
    const slots = this.#slots;
    let i = this.#slot(key);
    while (slots[2 * i] !== -1) i = (i + 1) & this.#mask;
    slots[2 * i] = key;
    slots[2 * i + 1] = mark;
  }
}

/** One generation: its node-made ids by prefix index and counter, and ids of any other form. */
class Generation {
  /** Prefix -> its index in this generation and the largest counter kept for it. */
  prefixes = new Map<string, { index: number; max: number }>();
  readonly numbers: NumberTable;
  other = new Map<string, number>();
  size = 0;
  constructor(entries: number) {
    this.numbers = new NumberTable(entries);
  }

  /** Forgets everything (the table's memory is kept for the next generation). */
  reset(): void {
    this.prefixes = new Map();
    this.numbers.clear();
    this.other = new Map();
    this.size = 0;
  }
}

export class RecentIds {
  #current: Generation;
  #previous: Generation;
  #count = 0;
  readonly #generation: number;

  constructor(max: number) {
    this.#generation = Math.max(1, Math.floor(max / 2));
    this.#current = new Generation(this.#generation);
    this.#previous = new Generation(this.#generation);
  }

  /** How many ids were first seen so far: a mark to compare `firstSeen` against. */
  get mark(): number {
    return this.#count;
  }

  /** When `id` was first seen (its mark), or undefined if not recently. */
  firstSeen(id: string): number | undefined {
    const split = splitId(id);
    if (split < 0 || counter >= MAX_COUNTER) {
      return this.#current.other.get(id) ?? this.#previous.other.get(id);
    }
    return this.#find(id.slice(0, split), counter);
  }

  /** Whether `id` was seen recently; remembers it (forgetting the oldest generation) if not. */
  seen(id: string): boolean {
    return this.note(id) !== undefined;
  }

  /** firstSeen(id), and remembers `id` as first seen now when it was not (one lookup less). */
  note(id: string): number | undefined {
    const split = splitId(id);
    if (split >= 0 && counter < MAX_COUNTER) return this.noteParts(id.slice(0, split), counter);
    const first = this.#current.other.get(id) ?? this.#previous.other.get(id);
    if (first !== undefined) return first;
    this.#next().other.set(id, ++this.#count);
    return undefined;
  }

  /**
   * note() for a node-made id given as its parts: `prefix` (up to and including the last "-")
   * and its canonical base-36 counter as a number (see wire_fields.ts idParts).
   */
  noteParts(prefix: string, n: number): number | undefined {
    if (n >= MAX_COUNTER) return this.note(prefix + n.toString(36));
    const cur = this.#current.prefixes.get(prefix);
    const prev = this.#previous.prefixes.get(prefix);
    // A node's ids mostly arrive in counter order: one above every counter kept is new without
    // a lookup (unless a generation ran out of prefix indexes and may hold it as a string).
    const maybe = (cur ? n <= cur.max : this.#current.prefixes.size >= PREFIXES) ||
      (prev ? n <= prev.max : this.#previous.prefixes.size >= PREFIXES);
    if (maybe) {
      const first = this.#find(prefix, n);
      if (first !== undefined) return first;
    }
    const g = this.#next();
    let p = g.prefixes.get(prefix);
    if (p === undefined) {
      if (g.prefixes.size >= PREFIXES) {
        // Kept as a string instead (never also as a number: this generation has no index for it).
        g.other.set(prefix + n.toString(36), ++this.#count);
        return undefined;
      }
      g.prefixes.set(prefix, p = { index: g.prefixes.size, max: -1 });
    }
    g.numbers.add(n * PREFIXES + p.index, ++this.#count);
    if (n > p.max) p.max = n;
    return undefined;
  }

  #find(prefix: string, n: number): number | undefined {
    return findIn(this.#current, prefix, n) ?? findIn(this.#previous, prefix, n);
  }

  /** The generation a new id goes into (a full one becomes the previous). */
  #next(): Generation {
    if (this.#current.size >= this.#generation) {
      const dropped = this.#previous;
      this.#previous = this.#current;
      dropped.reset();
      this.#current = dropped;
    }
    this.#current.size++;
    return this.#current;
  }
}

/** The mark of a node-made id in generation `g`, if it is there. */
function findIn(g: Generation, prefix: string, n: number): number | undefined {
  const p = g.prefixes.get(prefix);
  return p === undefined
    ? g.other.get(prefix + n.toString(36))
    : g.numbers.get(n * PREFIXES + p.index);
}

/** The counter splitId found (one value instead of an object per id). */
let counter = 0;

/**
 * Where the counter of a node-made id starts (its prefix ends just before), with the counter in
 * `counter`; -1 for an id of any other form. Only the canonical base-36 form counts (no leading
 * zero, lower case), so two different ids never give the same prefix and counter.
 */
function splitId(id: string): number {
  const end = id.length;
  // The "-" must be at most MAX_DIGITS characters before the end.
  const stop = end - MAX_DIGITS - 1;
  let i = end - 1;
  for (; i >= 0 && i >= stop; i--) {
    const c = id.charCodeAt(i);
    if (c === 0x2d) break; // "-"
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a))) return -1;
  }
  const start = i + 1;
  if (i < 0 || i < stop || id.charCodeAt(i) !== 0x2d || start === end) return -1;
  if (id.charCodeAt(start) === 0x30 && end - start > 1) return -1; // a leading zero
  let n = 0;
  for (let k = start; k < end; k++) {
    const c = id.charCodeAt(k);
    n = n * 36 + (c <= 0x39 ? c - 0x30 : c - 0x61 + 10);
  }
  counter = n;
  return start;
}
