/**
 * Topic names as a tree of their levels, one value per topic, searched by filter: what the
 * retained messages (RetainedIndex) and the router's cached topics (TopicIndex) are kept in.
 * The reverse of TopicTree, which stores filters and is searched by topic.
 */

class TrieNode<T> {
  children: Map<string, TrieNode<T>> | null = null;
  value: T | null = null;
}

export class LevelTrie<T> {
  #root = new TrieNode<T>();

  /** The value of `topic`, or null. */
  get(topic: string): T | null {
    let node: TrieNode<T> | undefined = this.#root;
    for (const level of topic.split("/")) {
      node = node.children?.get(level);
      if (!node) return null;
    }
    return node.value;
  }

  /** Sets the value of `topic`; returns the one it replaced, or null. */
  set(topic: string, value: T): T | null {
    let node = this.#root;
    for (const level of topic.split("/")) {
      node.children ??= new Map();
      let next = node.children.get(level);
      if (!next) {
        next = new TrieNode<T>();
        node.children.set(level, next);
      }
      node = next;
    }
    const old = node.value;
    node.value = value;
    return old;
  }

  /** Removes the value of `topic` and the branches left empty; returns it, or null. */
  delete(topic: string): T | null {
    const levels = topic.split("/");
    const path: TrieNode<T>[] = [this.#root];
    let node = this.#root;
    for (const level of levels) {
      const next = node.children?.get(level);
      if (!next) return null;
      path.push(next);
      node = next;
    }
    const old = node.value;
    node.value = null;
    for (let i = levels.length; i > 0; i--) {
      const n = path[i];
      if (n.value !== null || (n.children && n.children.size > 0)) break;
      path[i - 1].children!.delete(levels[i - 1]);
    }
    return old;
  }

  clear(): void {
    this.#root = new TrieNode<T>();
  }

  /**
   * The values of the topics `filter` matches, walked lazily (a value replaced or removed before
   * the walk reaches it is seen as it is then): `+` one level, `#` the rest including the parent
   * level, and no wildcard first level for a topic starting with `$` (MQTT-4.7.2-1).
   */
  *match(filter: string): Generator<T, void, undefined> {
    yield* walk(this.#root, filter.split("/"), 0);
  }

  /** Nodes in the tree besides the root (structure checks: an emptied trie holds none). */
  get nodeCount(): number {
    let n = 0;
    const count = (node: TrieNode<T>) => {
      if (!node.children) return;
      for (const child of node.children.values()) {
        n++;
        count(child);
      }
    };
    count(this.#root);
    return n;
  }
}

function* walk<T>(node: TrieNode<T>, f: string[], i: number): Generator<T, void, undefined> {
  if (i === f.length) {
    if (node.value !== null) yield node.value;
    return;
  }
  const level = f[i];
  if (level === "#") {
    // "a/#" matches "a" (the root holds no topic).
    if (node.value !== null) yield node.value;
    yield* all(node, i === 0);
    return;
  }
  if (!node.children) return;
  if (level === "+") {
    for (const [name, child] of node.children) {
      if (i === 0 && name.charCodeAt(0) === 0x24) continue;
      yield* walk(child, f, i + 1);
    }
    return;
  }
  const child = node.children.get(level);
  if (child) yield* walk(child, f, i + 1);
}

function* all<T>(node: TrieNode<T>, skipDollar: boolean): Generator<T, void, undefined> {
  if (!node.children) return;
  for (const [name, child] of node.children) {
    if (skipDollar && name.charCodeAt(0) === 0x24) continue;
    if (child.value !== null) yield child.value;
    yield* all(child, false);
  }
}
