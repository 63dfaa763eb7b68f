/**
 * What delivering a node stream's entries needs besides the forwarder: how a drain delivers, the
 * shape of an entry, the keys duplicates are recognised by, who a passed-on copy is for, and the
 * sessions that moved away lately.
 */
import type { Buffer } from "node:buffer";
import type { StoredMessage } from "../broker/model.ts";
import { topicMatches } from "../broker/topic.ts";

/** How drainStream delivers a dead node's stream (and #read this node's own). */
export interface DrainOptions {
  /** Its sessions were adopted with their stream backlog still to come (deliverBacklog). */
  backlog?: boolean;
  /**
   * This node's own stream, read as it comes: QoS 1 deliveries to connected sessions may stay
   * unwritten until their subscribers acknowledge them (ClusterHost.deliverHeld); the XACK waits
   * for that instead of for a store write of each.
   */
  held?: boolean;
  /**
   * Also called for each message delivered (not for shared groups'), with the sessions it was
   * for when it was meant for those only ("publish-to"); acked after it resolves.
   */
  delivered?: (msg: StoredMessage, only?: readonly string[]) => Promise<void> | undefined;
}

/** How this node's own stream is delivered while no session moved away lately. */
export const HELD: DrainOptions = Object.freeze({ held: true });

/** One stream entry as XREADGROUP returns it: id and field/value pairs. */
export type StreamEntry = [Buffer, Buffer[]];

/**
 * What duplicates are recognised by: the message id, and the shared group a copy is for (one
 * message reaches a node once for its subscribers and once per group that picked the node).
 */
export function dedupKey(msg: StoredMessage, share: string | undefined): string {
  return share === undefined ? msg.id : `${msg.id}\n${share}`;
}

/**
 * A copy for one session only ("publish-to") is recognised by the message id and the session:
 * the node may have had the message already for its other subscribers, not for this one.
 */
export function sessionKey(msg: StoredMessage, clientId: string): string {
  return `${msg.id}\n>${clientId}`;
}

/** Client ids of `sessions` (client id -> filters) subscribed to `topic`, or null for none. */
export function subscribedTo(
  sessions: Iterable<[string, readonly string[]]>,
  topic: string,
  only?: readonly string[],
): string[] | null {
  let ids: string[] | null = null;
  for (const [id, filters] of sessions) {
    if (only && !only.includes(id)) continue;
    if (filters.some((f) => topicMatches(f, topic))) (ids ??= []).push(id);
  }
  return ids;
}

/**
 * Sessions released to another node recently: client id -> where, filters, until when. What this
 * node's own stream still brings for them goes on to their new node (Forwarder.passOn).
 */
export class MovedAway {
  #moved = new Map<string, { node: string; filters: string[]; until: number }>();

  /** `clientId` (subscribed to `filters`) moved to `node`; remembered for `ms`. */
  add(clientId: string, node: string, filters: string[], ms: number): void {
    if (filters.length) this.#moved.set(clientId, { node, filters, until: Date.now() + ms });
  }

  /**
   * Options for delivering own-stream entries: only `held` while no session moved away lately,
   * else also passing copies on with `forward` (Forwarder.forwardToSessions).
   */
  options(
    forward: (
      msg: StoredMessage,
      ids: string[],
      nodeOf: (clientId: string) => string,
    ) => Promise<void>,
  ): DrainOptions {
    if (this.#moved.size === 0) return HELD;
    const now = Date.now();
    for (const [id, m] of this.#moved) if (m.until < now) this.#moved.delete(id);
    if (this.#moved.size === 0) return HELD;
    const moved = new Map(this.#moved);
    return {
      held: true,
      delivered: (msg, only) => {
        const ids = subscribedTo(
          [...moved].map(([id, m]) => [id, m.filters] as [string, string[]]),
          msg.topic,
          only,
        );
        return ids ? forward(msg, ids, (id) => moved.get(id)!.node) : undefined;
      },
    };
  }
}
