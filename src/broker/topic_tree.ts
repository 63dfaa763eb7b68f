/**
 * Subscription trie: one node per filter level, `+` and `#` as ordinary child keys.
 * Matching a topic walks at most (levels x 3) nodes regardless of how many filters exist.
 */

class TrieNode<V> {
  children: Map<string, TrieNode<V>> | null = null;
  /** Values stored at this exact filter, by owner (client id). */
  values: Map<string, V> | null = null;
}

/**
 * Told of every change to a tree: `value` is the filter's new value for `owner`, undefined when
 * the owner's filter was removed.
 */
export type TreeObserver<V> = (filter: string, owner: string, value: V | undefined) => void;

export class TopicTree<V> {
  #root = new TrieNode<V>();
  #count = 0;
  #observers: TreeObserver<V>[] = [];
  /** Bumped on every change so callers can cache match results. */
  generation = 0;

  /**
   * Calls `observer` after every add and remove from now on: for caches that invalidate only
   * what a change touches instead of everything. Returns a function that stops the calls.
   */
  observe(observer: TreeObserver<V>): () => void {
    this.#observers = [...this.#observers, observer];
    return () => {
      this.#observers = this.#observers.filter((o) => o !== observer);
    };
  }

  #changed(filter: string, owner: string, value: V | undefined): void {
    const observers = this.#observers;
    for (let i = 0; i < observers.length; i++) observers[i](filter, owner, value);
  }

  get size(): number {
    return this.#count;
  }

  /** Returns true when `filter` had no owner before (a new route). */
  add(filter: string, owner: string, value: V): boolean {
    let node = this.#root;
    for (const level of filter.split("/")) {
      node.children ??= new Map();
      let next = node.children.get(level);
      if (!next) {
        next = new TrieNode<V>();
        node.children.set(level, next);
      }
      node = next;
    }
    node.values ??= new Map();
    const first = node.values.size === 0;
    if (!node.values.has(owner)) this.#count++;
    node.values.set(owner, value);
    this.generation++;
    this.#changed(filter, owner, value);
    return first;
  }

  /** Returns "last" when the filter has no owner left, true when removed, false when absent. */
  remove(filter: string, owner: string): boolean | "last" {
    const levels = filter.split("/");
    const path: TrieNode<V>[] = [this.#root];
    let node = this.#root;
    for (const level of levels) {
      const next = node.children?.get(level);
      if (!next) return false;
      path.push(next);
      node = next;
    }
    if (!node.values?.delete(owner)) return false;
    this.#count--;
    this.generation++;
    const last = node.values.size === 0;
    // Prune empty branches so a churn of unique filters does not leak nodes.
    for (let i = levels.length; i > 0; i--) {
      const n = path[i];
      if ((n.values && n.values.size > 0) || (n.children && n.children.size > 0)) break;
      path[i - 1].children!.delete(levels[i - 1]);
    }
    this.#changed(filter, owner, undefined);
    return last ? "last" : true;
  }

  /** Every filter that has at least one owner. */
  filters(): string[] {
    const out: string[] = [];
    const walk = (node: TrieNode<V>, prefix: string | null) => {
      if (node.values && node.values.size > 0 && prefix !== null) out.push(prefix);
      if (node.children) {
        for (const [k, child] of node.children) walk(child, prefix === null ? k : `${prefix}/${k}`);
      }
    };
    walk(this.#root, null);
    return out;
  }

  /** Calls `visit(filter, owner, value)` for every stored (filter, owner) pair. */
  forEach(visit: (filter: string, owner: string, value: V) => void): void {
    const walk = (node: TrieNode<V>, prefix: string | null) => {
      if (node.values && prefix !== null) { for (const [o, v] of node.values) visit(prefix, o, v); }
      if (node.children) {
        for (const [k, child] of node.children) walk(child, prefix === null ? k : `${prefix}/${k}`);
      }
    };
    walk(this.#root, null);
  }

  /** Calls `visit(owner, value)` for every stored filter that matches `topic`. */
  match(topic: string, visit: (owner: string, value: V) => void): void {
    const levels = topic.split("/");
    const dollar = topic.charCodeAt(0) === 0x24; // MQTT-4.7.2-1
    this.#walk(this.#root, levels, 0, dollar, visit);
  }

  #walk(
    node: TrieNode<V>,
    levels: string[],
    i: number,
    dollar: boolean,
    visit: (owner: string, value: V) => void,
  ): void {
    const children = node.children;
    if (i === levels.length) {
      if (node.values) { for (const [o, v] of node.values) visit(o, v); }
      // "a/#" matches "a" (MQTT 4.7.1.2).
      const hash = children?.get("#");
      if (hash?.values) { for (const [o, v] of hash.values) visit(o, v); }
      return;
    }
    if (!children) return;
    const wild = !(i === 0 && dollar);
    if (wild) {
      const hash = children.get("#");
      if (hash?.values) { for (const [o, v] of hash.values) visit(o, v); }
      const plus = children.get("+");
      if (plus) this.#walk(plus, levels, i + 1, dollar, visit);
    }
    const exact = children.get(levels[i]);
    if (exact) this.#walk(exact, levels, i + 1, dollar, visit);
  }
}
