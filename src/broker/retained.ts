/**
 * Retained messages, indexed by topic level so a wildcard subscription walks only the matching
 * branches instead of scanning every retained topic.
 */
import type { Properties } from "../codec/packets.ts";
import { LevelTrie } from "./level_trie.ts";
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

export class RetainedIndex {
  #trie = new LevelTrie<StoredMessage>();
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
    return this.#trie.get(topic);
  }

  /** Sets or (message null) clears the retained message of `topic`. */
  set(topic: string, message: StoredMessage | null): void {
    const old = message === null ? this.#trie.delete(topic) : this.#trie.set(topic, message);
    const limited = !isSysTopic(topic);
    if (old) {
      this.#bytes -= old.payload.byteLength;
      if (limited) this.#cost -= retainedCost(old);
    }
    if (message) {
      this.#bytes += message.payload.byteLength;
      if (limited) this.#cost += retainedCost(message);
    }
    const change = (message ? 1 : 0) - (old ? 1 : 0);
    this.#size += change;
    if (limited) this.#limitedSize += change;
  }

  /**
   * The retained messages matching `filter`, walked lazily: a subscriber fed at its own pace
   * holds a cursor into the tree, not a copy of every match. Each message is read when the walk
   * reaches it, so one cleared meanwhile is skipped and one replaced is the newer version.
   */
  iterate(filter: string): Generator<StoredMessage, void, undefined> {
    return this.#trie.match(filter);
  }

  /** Nodes in the tree besides the root (structure checks: a cleared index holds none). */
  get nodeCount(): number {
    return this.#trie.nodeCount;
  }

  /** Every retained message whose topic matches `filter`. */
  match(filter: string): StoredMessage[] {
    return [...this.iterate(filter)];
  }
}
