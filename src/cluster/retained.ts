/**
 * Retained message replication. The store holds retained messages in Redis; a node that sets
 * or deletes one announces it on `P ch:retained`, and every node updates its in-memory index.
 * After a reconnect a node reloads the full set; a change announced while that snapshot is read
 * is newer than the snapshot and wins over it.
 */
import type { StoredMessage } from "../broker/model.ts";
import type { LinkContext } from "./context.ts";
import { encodeWire, type WireMessage } from "./wire.ts";

/** Keeps the local retained index in step with the other nodes'. */
export class RetainedReplica {
  /** Topics with a retained message, as this node last learned them. */
  #topics = new Set<string>();
  /** One set per reload in progress: the topics changed live while its snapshot was read. */
  #reloads = new Set<Set<string>>();

  constructor(private readonly ctx: LinkContext) {}

  /** A retained message was set (null: deleted) here: tell the other nodes. */
  changed(topic: string, msg: StoredMessage | null): void {
    this.#live(topic, msg !== null);
    const wire = encodeWire({ kind: "retained", from: this.ctx.me, topic, msg });
    this.ctx.cmd.publish(this.ctx.keys.channel("retained"), wire).catch(() => {});
  }

  /** Applies another node's announcement. */
  onWire(m: WireMessage): void {
    if (m.kind !== "retained" || m.from === this.ctx.me) return;
    this.#live(m.topic, m.msg !== null);
    this.ctx.host.retainedFromPeer(m.topic, m.msg);
  }

  /** Replaces the local index with the store's set, keeping changes announced meanwhile. */
  async reload(): Promise<void> {
    const host = this.ctx.host;
    const touched = new Set<string>();
    this.#reloads.add(touched);
    let all;
    try {
      all = await this.ctx.store.loadRetained();
    } finally {
      this.#reloads.delete(touched);
    }
    const now = new Set<string>();
    for (const m of all) {
      if (touched.has(m.topic)) continue;
      now.add(m.topic);
      host.retainedFromPeer(m.topic, m);
    }
    for (const t of this.#topics) {
      if (touched.has(t)) now.add(t);
      else if (!now.has(t)) host.retainedFromPeer(t, null);
    }
    this.#topics = now;
  }

  /** A retained message set or deleted live: newer than any snapshot being read now. */
  #live(topic: string, present: boolean): void {
    if (present) this.#topics.add(topic);
    else this.#topics.delete(topic);
    for (const touched of this.#reloads) touched.add(topic);
  }
}
