/**
 * A set of topic names searchable by filter: the reverse of TopicTree, which stores filters and
 * is searched by topic. The router keeps the topics it has cached routes for here, so that a
 * subscription change finds the routes it touches (those of the topics its filter matches)
 * without a scan of the whole cache.
 */

class IndexNode {
  children: Map<string, IndexNode> | null = null;
  /** The topic ending at this node, when it is in the set. */
  topic: string | null = null;
}

export class TopicIndex {
  #root = new IndexNode();
  #size = 0;

  /** Topics added since the last clear (a topic added twice counts once). */
  get size(): number {
    return this.#size;
  }

  add(topic: string): void {
    let node = this.#root;
    for (const level of topic.split("/")) {
      node.children ??= new Map();
      let next = node.children.get(level);
      if (!next) {
        next = new IndexNode();
        node.children.set(level, next);
      }
      node = next;
    }
    if (node.topic === null) {
      node.topic = topic;
      this.#size++;
    }
  }

  clear(): void {
    this.#root = new IndexNode();
    this.#size = 0;
  }

  /**
   * Calls `visit(topic)` for every topic in the set that `filter` matches, by the rules of
   * TopicTree.match: `+` one level, `#` the rest including the parent level, and no wildcard
   * first level for a topic starting with `$` (MQTT-4.7.2-1).
   */
  match(filter: string, visit: (topic: string) => void): void {
    this.#walk(this.#root, filter.split("/"), 0, visit);
  }

  #walk(node: IndexNode, levels: string[], i: number, visit: (topic: string) => void): void {
    if (i === levels.length) {
      if (node.topic !== null) visit(node.topic);
      return;
    }
    const level = levels[i];
    if (level === "#") {
      if (node.topic !== null) visit(node.topic); // "a/#" matches "a"
      if (node.children) {
        for (const [k, child] of node.children) {
          if (i === 0 && k.charCodeAt(0) === 0x24) continue;
          all(child, visit);
        }
      }
      return;
    }
    const children = node.children;
    if (!children) return;
    if (level === "+") {
      for (const [k, child] of children) {
        if (i === 0 && k.charCodeAt(0) === 0x24) continue;
        this.#walk(child, levels, i + 1, visit);
      }
      return;
    }
    const exact = children.get(level);
    if (exact) this.#walk(exact, levels, i + 1, visit);
  }
}

function all(node: IndexNode, visit: (topic: string) => void): void {
  if (node.topic !== null) visit(node.topic);
  if (node.children) { for (const child of node.children.values()) all(child, visit); }
}
