/**
 * Retained messages, indexed by topic level so a wildcard subscription walks only the matching
 * branches instead of scanning every retained topic.
 */
import type { Properties } from "../codec/packets.ts";
import { messageSize } from "./messages.ts";
import type { StoredMessage } from "./model.ts";
import { isSysTopic } from "./sys_topic.ts";

/**
 * What one retained message is counted as in the retained limit besides its payload and topic:
 * its tree node, the node's map entry and the message object (the payload, topic and properties
 * are counted by messageSize). About its cost in V8's heap, so
 * that tiny payloads on many topics do not look free.
 */
export const RETAINED_ENTRY_OVERHEAD = 256;

/** The bytes a retained message counts as against `max-retained-bytes` (see messageSize). */
export function retainedCost(
  msg: { topic: string; payload: Uint8Array; properties?: Properties },
): number {
  return messageSize(msg) + RETAINED_ENTRY_OVERHEAD;
}

class Node {
  children: Map<string, Node> | null = null;
  message: StoredMessage | null = null;
}

export class RetainedIndex {
  #root = new Node();
  #size = 0;
  #bytes = 0;
  /** Messages and counted bytes outside `$SYS`, what the retained limits apply to. */
  #limitedSize = 0;
  #cost = 0;

  get size(): number {
    return this.#size;
  }

  /** Payload bytes of every retained message (for `$SYS/broker/store/messages/bytes`). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Retained messages outside `$SYS` (the broker's own values are not limited). */
  get limitedSize(): number {
    return this.#limitedSize;
  }

  /** What the retained messages outside `$SYS` count as together (see retainedCost). */
  get cost(): number {
    return this.#cost;
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
      if (node.message) {
        this.#size--;
        this.#bytes -= node.message.payload.byteLength;
        if (!isSysTopic(topic)) {
          this.#limitedSize--;
          this.#cost -= retainedCost(node.message);
        }
      }
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
    const limited = !isSysTopic(topic);
    if (!node.message) {
      this.#size++;
      if (limited) this.#limitedSize++;
    } else {
      this.#bytes -= node.message.payload.byteLength;
      if (limited) this.#cost -= retainedCost(node.message);
    }
    this.#bytes += message.payload.byteLength;
    if (limited) this.#cost += retainedCost(message);
    node.message = message;
  }

  /**
   * The retained messages matching `filter`, walked lazily: a subscriber fed at its own pace
   * holds a cursor into the tree, not a copy of every match. Each message is read when the walk
   * reaches it, so one cleared meanwhile is skipped and one replaced is the newer version.
   */
  *iterate(filter: string): Generator<StoredMessage, void, undefined> {
    yield* this.#iterate(this.#root, filter.split("/"), 0);
  }

  *#iterate(node: Node, f: string[], i: number): Generator<StoredMessage, void, undefined> {
    if (i === f.length) {
      if (node.message) yield node.message;
      return;
    }
    const level = f[i];
    if (level === "#") {
      if (i > 0 && node.message) yield node.message;
      yield* this.#iterateAll(node, i === 0);
      return;
    }
    if (!node.children) return;
    if (level === "+") {
      for (const [name, child] of node.children) {
        if (i === 0 && name.charCodeAt(0) === 0x24) continue;
        yield* this.#iterate(child, f, i + 1);
      }
      return;
    }
    const child = node.children.get(level);
    if (child) yield* this.#iterate(child, f, i + 1);
  }

  *#iterateAll(node: Node, skipDollar: boolean): Generator<StoredMessage, void, undefined> {
    if (!node.children) return;
    for (const [name, child] of node.children) {
      if (skipDollar && name.charCodeAt(0) === 0x24) continue;
      if (child.message) yield child.message;
      yield* this.#iterateAll(child, false);
    }
  }

  /** Nodes in the tree besides the root (structure checks: a cleared index holds none). */
  get nodeCount(): number {
    let n = 0;
    const walk = (node: Node) => {
      if (!node.children) return;
      for (const child of node.children.values()) {
        n++;
        walk(child);
      }
    };
    walk(this.#root);
    return n;
  }

  /** Every retained message whose topic matches `filter`. */
  match(filter: string): StoredMessage[] {
    return [...this.iterate(filter)];
  }
}
