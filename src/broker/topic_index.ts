/**
 * A set of topic names searchable by filter: the reverse of TopicTree, which stores filters and
 * is searched by topic. The router keeps the topics it has cached routes for here, so that a
 * subscription change finds the routes it touches (those of the topics its filter matches)
 * without a scan of the whole cache.
 */

import { LevelTrie } from "./level_trie.ts";

export class TopicIndex {
  #trie = new LevelTrie<string>();
  #size = 0;

  /** Topics added since the last clear (a topic added twice counts once). */
  get size(): number {
    return this.#size;
  }

  add(topic: string): void {
    if (this.#trie.set(topic, topic) === null) this.#size++;
  }

  clear(): void {
    this.#trie.clear();
    this.#size = 0;
  }

  /**
   * Calls `visit(topic)` for every topic in the set that `filter` matches, by the rules of
   * TopicTree.match: `+` one level, `#` the rest including the parent level, and no wildcard
   * first level for a topic starting with `$` (MQTT-4.7.2-1). Stops when `visit` returns false;
   * returns false if it did.
   */
  match(filter: string, visit: (topic: string) => boolean): boolean {
    for (const topic of this.#trie.match(filter)) if (!visit(topic)) return false;
    return true;
  }
}
