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
   * first level for a topic starting with `$` (MQTT-4.7.2-1). Stops when `visit` returns false;
   * returns false if it did.
   */
  match(filter: string, visit: (topic: string) => boolean): boolean {
    return walk(this.#root, filter.split("/"), 0, visit);
  }
}

function walk(
  node: IndexNode,
  levels: string[],
  i: number,
  visit: (topic: string) => boolean,
): boolean {
  if (i === levels.length) return node.topic === null || visit(node.topic);
  const level = levels[i];
  if (level === "#") {
    // "a/#" matches "a".
    if (node.topic !== null && !visit(node.topic)) return false;
    if (node.children) {
      for (const [k, child] of node.children) {
        if (i === 0 && k.charCodeAt(0) === 0x24) continue;
        if (!all(child, visit)) return false;
      }
    }
    return true;
  }
  const children = node.children;
  if (!children) return true;
  if (level === "+") {
    for (const [k, child] of children) {
      if (i === 0 && k.charCodeAt(0) === 0x24) continue;
      if (!walk(child, levels, i + 1, visit)) return false;
    }
    return true;
  }
  const exact = children.get(level);
  return exact === undefined || walk(exact, levels, i + 1, visit);
}

function all(node: IndexNode, visit: (topic: string) => boolean): boolean {
  if (node.topic !== null && !visit(node.topic)) return false;
  if (node.children) {
    for (const child of node.children.values()) if (!all(child, visit)) return false;
  }
  return true;
}
