/**
 * Duplicate suppression for forwarded messages: a bounded set of recently seen message ids
 * (a resent XADD, a re-read stream entry, a dead node's stream drained after its sessions were
 * adopted here). Each id keeps the order in which it was first seen, so a takeover can tell
 * copies that arrived before it from those that came after.
 */
export class RecentIds {
  #order = new Map<string, number>();
  #count = 0;
  #ring: string[] = [];
  #pos = 0;

  constructor(private readonly max: number) {}

  /** How many ids were first seen so far: a mark to compare `firstSeen` against. */
  get mark(): number {
    return this.#count;
  }

  /** When `id` was first seen (its mark), or undefined if not recently. */
  firstSeen(id: string): number | undefined {
    return this.#order.get(id);
  }

  /** Whether `id` was seen recently; remembers it (forgetting the oldest) if not. */
  seen(id: string): boolean {
    if (this.#order.has(id)) return true;
    this.#order.set(id, ++this.#count);
    if (this.#ring.length < this.max) this.#ring.push(id);
    else {
      this.#order.delete(this.#ring[this.#pos]);
      this.#ring[this.#pos] = id;
      this.#pos = (this.#pos + 1) % this.max;
    }
    return false;
  }
}
