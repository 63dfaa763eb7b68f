/**
 * Values by MQTT packet id (1-65535), in the order they were set: what a `Map` would do, without
 * a `Map`. A session's deliveries in flight, and the ids of its inbound QoS 2 PUBLISHes waiting
 * for PUBREL, come and go with every message.
 *
 * Why not a `Map`: V8 replaces a Map's hash table every few insertions when entries come and go
 * (one per delivery, one per PUBACK), and links each replaced table to its successor (for
 * iterators). Once a table has reached the old generation (any full collection puts it there),
 * the dead old table keeps its successor, and through the chain every later table and the
 * deliveries and messages they hold, alive through every young collection until the next full
 * one. After its first full collection a broker at 5,000 QoS 1 messages/s then promoted ~500 KiB
 * per young collection, ran a full collection every 2 s, and its p99 went from 1.4 to 6.6 ms.
 * Typed arrays and plain arrays, as used here, are replaced without such links.
 *
 * Packet ids are looked up in an open-addressing table of `Int32Array`s (linear probing; a delete
 * moves later entries of its probe run back, so no deleted marks pile up and the table is rebuilt
 * only to grow: with marks, a session's table was rebuilt, two new typed arrays, every few dozen
 * deliveries); the order of sending is an array of entries with a moving head (a compliant client
 * acknowledges in that order, MQTT 4.6, so the head moves with the acknowledgements).
 */
import type { OutboundEntry } from "./model.ts";

/** What may be read of a PacketIdTable. */
export interface PacketIdView<T> {
  readonly size: number;
  get(packetId: number): T | undefined;
  has(packetId: number): boolean;
  /** In the order they were set: a snapshot, safe to walk while entries are deleted. */
  values(): readonly T[];
}

/** What the rest of the broker reads of a session's in-flight deliveries. */
export type InflightView = PacketIdView<OutboundEntry>;

const EMPTY = 0;
/** What values() returns for an empty table. */
const NONE: readonly never[] = Object.freeze([]);
/** The ring of a table that has had nothing in flight yet (or was emptied while large). */
const NO_RING: never[] = [];
const MIN_SLOTS = 8;
/** A table emptied again is cleared in place up to this size, and replaced by a small one above. */
const KEPT_SLOTS = 64;
/**
 * An emptied ring is kept up to this size (1 KiB): a session with some dozens in flight empties
 * and refills its table all the time, and growing a ring again from the smallest each time cost
 * more than the rebuilds it replaced.
 */
const KEPT_RING = 256;

export class PacketIdTable<T> implements PacketIdView<T> {
  /** Packet id per slot; EMPTY when none. */
  #keys = new Int32Array(MIN_SLOTS);
  /** Place in #ring of the entry in each slot. */
  #positions = new Int32Array(MIN_SLOTS);
  /** 32 - log2(slots): a hash's top bits pick the slot. */
  #shift = 32 - Math.log2(MIN_SLOTS);
  #used = 0;
  /**
   * Entries in the order they were set, in a ring of a power-of-two size: #count places from #head
   * on, `undefined` where one was deleted. A ring, not an array pushed at the end and rebuilt from
   * the head: each growth of such an array left its old backing store behind, and one in the old
   * generation kept the entries it held alive through young collections (see `forget`). The ring
   * is replaced only to grow, and then emptied.
   */
  #ring: (T | undefined)[] = NO_RING;
  #head = 0;
  #count = 0;

  get size(): number {
    return this.#used;
  }

  /** Places kept in sending order, live or deleted (diagnostics, tests): bounded by size. */
  get kept(): number {
    return this.#count;
  }

  get(packetId: number): T | undefined {
    const slot = this.#find(packetId);
    return slot < 0 ? undefined : this.#ring[this.#positions[slot]];
  }

  has(packetId: number): boolean {
    return this.#find(packetId) >= 0;
  }

  /** Sets the entry for `packetId`; one already there is replaced in its place (as in a Map). */
  set(packetId: number, entry: T): void {
    if (!(packetId > 0 && packetId <= 65535)) throw new RangeError(`packet id ${packetId}`);
    const slot = this.#find(packetId);
    if (slot >= 0) {
      this.#ring[this.#positions[slot]] = entry;
      return;
    }
    if (this.#count === this.#ring.length) this.#regrow();
    if ((this.#used + 1) * 2 > this.#keys.length) this.#grow();
    const keys = this.#keys;
    const mask = keys.length - 1;
    let i = hash(packetId, this.#shift);
    while (keys[i] !== EMPTY) i = (i + 1) & mask;
    keys[i] = packetId;
    const at = (this.#head + this.#count) & (this.#ring.length - 1);
    this.#positions[i] = at;
    this.#ring[at] = entry;
    this.#count++;
    this.#used++;
  }

  delete(packetId: number): boolean {
    const slot = this.#find(packetId);
    if (slot < 0) return false;
    this.#used--;
    const ring = this.#ring;
    ring[this.#positions[slot]] = undefined;
    if (this.#used === 0) {
      // Empty again (the usual state between deliveries): start over, nothing to carry (every
      // place of the ring is undefined again, so it is kept unless large).
      if (ring.length > KEPT_RING) {
        spareRing(ring);
        this.#ring = NO_RING;
      }
      this.#head = 0;
      this.#count = 0;
      if (this.#keys.length > KEPT_SLOTS) {
        spareSlots(this.#keys);
        spareSlots(this.#positions);
        this.#keys = new Int32Array(MIN_SLOTS);
        this.#positions = new Int32Array(MIN_SLOTS);
        this.#shift = 32 - Math.log2(MIN_SLOTS);
      } else this.#keys.fill(EMPTY);
      return true;
    }
    this.#unlink(slot);
    // Past the deleted places at the head (a compliant client acknowledges in order, MQTT 4.6).
    const mask = ring.length - 1;
    while (ring[this.#head] === undefined) {
      this.#head = (this.#head + 1) & mask;
      this.#count--;
    }
    return true;
  }

  values(): readonly T[] {
    // Every (re)connecting session asks, nearly always with nothing in flight: no generator,
    // no copy then (~340 bytes a connect).
    if (this.#used === 0) return NONE;
    const ring = this.#ring;
    const mask = ring.length - 1;
    const out: T[] = [];
    for (let k = 0; k < this.#count; k++) {
      const e = ring[(this.#head + k) & mask];
      if (e !== undefined) out.push(e);
    }
    return out;
  }

  #find(packetId: number): number {
    // 0 marks a free slot; ids are 1-65535 (a client's PUBACK for 0 finds nothing).
    if (!(packetId > 0)) return -1;
    const keys = this.#keys;
    const mask = keys.length - 1;
    let i = hash(packetId, this.#shift);
    for (;;) {
      const k = keys[i];
      if (k === packetId) return i;
      if (k === EMPTY) return -1;
      i = (i + 1) & mask;
    }
  }

  /**
   * A full ring: its live entries, in order, into a new one twice their number (at least the
   * smallest), every slot's place renumbered to match; the old ring is emptied (see `forget`).
   * Full with holes (entries acknowledged out of order behind one that is not) makes it no larger.
   */
  #regrow(): void {
    const old = this.#ring;
    const mask = old.length - 1;
    const size = ringSize(this.#used, MIN_SLOTS);
    const ring = ringArray<T>(size);
    const index = old.length > MIN_SLOTS
      ? slotArray(old.length, false)
      : new Int32Array(old.length);
    let n = 0;
    for (let k = 0; k < this.#count; k++) {
      const at = (this.#head + k) & mask;
      const e = old[at];
      if (e === undefined) continue;
      index[at] = n;
      ring[n++] = e;
    }
    const keys = this.#keys;
    const positions = this.#positions;
    for (let s = 0; s < keys.length; s++) if (keys[s] !== EMPTY) positions[s] = index[positions[s]];
    this.#ring = ring;
    this.#head = 0;
    this.#count = n;
    spareSlots(index);
    if (old !== NO_RING) {
      // Emptied, it serves the next table that grows (see forget for why it must be emptied).
      old.fill(undefined);
      spareRing(old);
    }
  }

  /**
   * Empties `slot`, moving back each later entry of its probe run that could not otherwise be
   * found from its home slot any more (Knuth's deletion for linear probing, 6.4 algorithm R).
   */
  #unlink(slot: number): void {
    const keys = this.#keys;
    const positions = this.#positions;
    const mask = keys.length - 1;
    const shift = this.#shift;
    let hole = slot;
    let j = slot;
    for (;;) {
      j = (j + 1) & mask;
      const k = keys[j];
      if (k === EMPTY) break;
      const home = hash(k, shift);
      // The entry at j stays if its home lies cyclically in (hole, j]: the hole is not on its way.
      if (hole <= j ? hole < home && home <= j : hole < home || home <= j) continue;
      keys[hole] = k;
      positions[hole] = positions[j];
      hole = j;
    }
    keys[hole] = EMPTY;
  }

  /** A table sized for what is live (at least four times it). */
  #grow(): void {
    let n = MIN_SLOTS;
    while (n < (this.#used + 1) * 4) n *= 2;
    const oldKeys = this.#keys;
    const oldPositions = this.#positions;
    const keys = slotArray(n, true);
    const positions = slotArray(n, false);
    const mask = n - 1;
    const shift = 32 - Math.log2(n);
    for (let s = 0; s < oldKeys.length; s++) {
      const k = oldKeys[s];
      if (k === EMPTY) continue;
      let i = hash(k, shift);
      while (keys[i] !== EMPTY) i = (i + 1) & mask;
      keys[i] = k;
      positions[i] = oldPositions[s];
    }
    this.#keys = keys;
    this.#positions = positions;
    this.#shift = shift;
    spareSlots(oldKeys);
    spareSlots(oldPositions);
  }
}

/**
 * Slot arrays of tables that grew or emptied, by log2 of their length, for the next table that
 * grows (any session's). A typed array larger than 64 bytes is zero-filled memory outside V8's
 * heap that costs about a microsecond to make, and a session whose deliveries in flight rise and
 * fall back to none rebuilt its table three or four times per burst: 2% of a node delivering to
 * 50 subscribers. Up to 4 MiB are kept in all (a turn's worth: the 50 tables of a fan-out grow in
 * the same turn).
 */
const spareArrays: Int32Array<ArrayBuffer>[][] = [];
const SPARE_BYTES = 4 * 1024 * 1024;
const MAX_SPARE_SLOTS = 4096;
let spareBytes = 0;

/** An array of `n` (a power of two) slots; `zeroed`: all EMPTY, else of arbitrary contents. */
function slotArray(n: number, zeroed: boolean): Int32Array<ArrayBuffer> {
  const a = spareArrays[Math.log2(n)]?.pop();
  if (a === undefined) return new Int32Array(n);
  spareBytes -= a.byteLength;
  if (zeroed) a.fill(EMPTY);
  return a;
}

/** Keeps `a`, which nothing refers to any more, for slotArray (small ones are cheap to make). */
function spareSlots(a: Int32Array<ArrayBuffer>): void {
  const n = a.length;
  if (n <= MIN_SLOTS || n > MAX_SPARE_SLOTS || spareBytes + a.byteLength > SPARE_BYTES) return;
  (spareArrays[Math.log2(n)] ??= []).push(a);
  spareBytes += a.byteLength;
}

/**
 * Emptied rings, by log2 of their length, for the next table that grows (any
 * session's): a subscriber whose deliveries in flight rise to hundreds and fall back to none
 * grew a new ring 8, 16, ... 2048 places long every burst, the largest share of what a node
 * receiving cross-node traffic allocated. Up to 4 MiB of places are kept in all.
 */
const spareRings: unknown[][][] = [];
const SPARE_RING_PLACES = 512 * 1024;
let sparePlaces = 0;

/** A ring of `n` (a power of two) places, all undefined. */
function ringArray<T>(n: number): (T | undefined)[] {
  const r = spareRings[Math.log2(n)]?.pop() as (T | undefined)[] | undefined;
  if (r === undefined) return new Array(n).fill(undefined);
  sparePlaces -= n;
  return r;
}

/** Keeps `ring`, emptied (every place undefined) and referred to by nothing else, for ringArray. */
function spareRing(ring: unknown[]): void {
  const n = ring.length;
  if (sparePlaces + n > SPARE_RING_PLACES) return forget(ring);
  (spareRings[Math.log2(n)] ??= []).push(ring);
  sparePlaces += n;
}

/** A regrown ring's size: a power of two, at least `min`, with room for twice what is live. */
export function ringSize(live: number, min: number): number {
  let size = min;
  while (size < live * 2 + 2) size *= 2;
  return size;
}

/**
 * Empties an array that is being replaced while it still holds live entries. Once it is in the old
 * generation, V8's young collections take every slot of it that points into the young one as a
 * root (the remembered set) until the next full collection, dead array or not: each entry it held
 * would then outlive its removal from the replacement, be promoted, and take its message along.
 */
export function forget(dropped: unknown[]): void {
  dropped.length = 0;
}

/**
 * The entries of `slots` from `from` on, without the holes deleted ones left: the live part of
 * an array kept in order with a moving head (here, and the memory store's seq_list.ts).
 */
export function liveSlots<T>(slots: readonly (T | undefined)[], from: number): T[] {
  const out: T[] = [];
  for (let k = from; k < slots.length; k++) {
    const e = slots[k];
    if (e !== undefined) out.push(e);
  }
  return out;
}

/** Packet ids are allocated in sequence: spread neighbours apart (Fibonacci hashing). */
function hash(packetId: number, shift: number): number {
  return Math.imul(packetId, 0x9e3779b1) >>> shift;
}

/** The view of a table never created (a session that never had a delivery in flight, ...). */
export const NO_PACKET_IDS: PacketIdView<never> = new PacketIdTable<never>();
