/**
 * Retained messages, indexed by topic level so a wildcard subscription walks only the matching
 * branches instead of scanning every retained topic.
 */
import type { StoredMessage } from "./model.ts";

class Node {
  children: Map<string, Node> | null = null;
  message: StoredMessage | null = null;
}

export class RetainedIndex {
  #root = new Node();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(topic: string): StoredMessage | null {
    let node: Node | undefined = this.#root;
    for (const level of topic.split("/")) {
      node = node.children?.get(level);
      if (!node) return null;
    }
    return node.message;
  }

  /** Sets or (message null) clears the retained message of `topic`. */
  set(topic: string, message: StoredMessage | null): void {
    const levels = topic.split("/");
    if (message === null) {
      const path: Node[] = [this.#root];
      let node = this.#root;
      for (const level of levels) {
        const next = node.children?.get(level);
        if (!next) return;
        path.push(next);
        node = next;
      }
      if (node.message) this.#size--;
      node.message = null;
      for (let i = levels.length; i > 0; i--) {
        const n = path[i];
        if (n.message || (n.children && n.children.size > 0)) break;
        path[i - 1].children!.delete(levels[i - 1]);
      }
      return;
    }
    let node = this.#root;
    for (const level of levels) {
      node.children ??= new Map();
      let next = node.children.get(level);
      if (!next) {
        next = new Node();
        node.children.set(level, next);
      }
      node = next;
    }
    if (!node.message) this.#size++;
    node.message = message;
  }

  /** Every retained message whose topic matches `filter`. */
  match(filter: string, out: StoredMessage[] = []): StoredMessage[] {
    this.#walk(this.#root, filter.split("/"), 0, out);
    return out;
  }

  #walk(node: Node, f: string[], i: number, out: StoredMessage[]): void {
    if (i === f.length) {
      if (node.message) out.push(node.message);
      return;
    }
    const level = f[i];
    if (level === "#") {
      // "a/#" includes "a" itself; at the root "#" must skip "$" topics (MQTT-4.7.2-1).
      if (i > 0 && node.message) out.push(node.message);
      this.#all(node, out, i === 0);
      return;
    }
    if (!node.children) return;
    if (level === "+") {
      for (const [name, child] of node.children) {
        if (i === 0 && name.charCodeAt(0) === 0x24) continue;
        this.#walk(child, f, i + 1, out);
      }
      return;
    }
    const child = node.children.get(level);
    if (child) this.#walk(child, f, i + 1, out);
  }

  #all(node: Node, out: StoredMessage[], skipDollar: boolean): void {
    if (!node.children) return;
    for (const [name, child] of node.children) {
      if (skipDollar && name.charCodeAt(0) === 0x24) continue;
      if (child.message) out.push(child.message);
      this.#all(child, out, false);
    }
  }
}
