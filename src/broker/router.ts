/**
 * Routing of one message to this node's subscribers: each matching session receives it once, at
 * the highest QoS among its matching subscriptions (capped by the message's QoS).
 */
import type { QoS } from "../codec/packets.ts";
import type { Delivery } from "./delivery.ts";
import type { StoredMessage } from "./model.ts";
import type { Session } from "./session.ts";
import type { SubscriptionTable } from "./subscriptions.ts";

interface RouteTarget {
  clientId: string;
  qos: QoS;
}

/** A stream of unique topics must not grow the route cache without limit. */
const MAX_CACHED_TOPICS = 10_000;

export class Router {
  readonly #subscriptions: SubscriptionTable;
  readonly #sessions: ReadonlyMap<string, Session>;
  readonly #delivery: Delivery;
  #matches = new Map<string, QoS>();
  /** topic -> matching (client id, max QoS) pairs, valid while the topic tree is unchanged. */
  #cache = new Map<string, RouteTarget[]>();
  #generation = -1;

  constructor(
    subscriptions: SubscriptionTable,
    sessions: ReadonlyMap<string, Session>,
    delivery: Delivery,
  ) {
    this.#subscriptions = subscriptions;
    this.#sessions = sessions;
    this.#delivery = delivery;
  }

  /** Delivers to local subscribers: once per session, at the highest matching QoS. */
  route(msg: StoredMessage): void {
    const targets = this.#targets(msg.topic);
    const single = targets.length === 1;
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i];
      const s = this.#sessions.get(t.clientId);
      if (!s) continue;
      this.#delivery.deliver(s, msg, (msg.qos < t.qos ? msg.qos : t.qos) as QoS, false, single);
    }
  }

  #targets(topic: string): RouteTarget[] {
    const tree = this.#subscriptions.tree;
    if (tree.generation !== this.#generation) {
      this.#cache.clear();
      this.#generation = tree.generation;
    }
    let targets = this.#cache.get(topic);
    if (targets) return targets;
    const matches = this.#matches;
    tree.match(topic, (owner, v) => {
      const prev = matches.get(owner);
      if (prev === undefined || v.qos > prev) matches.set(owner, v.qos);
    });
    targets = [];
    for (const [clientId, qos] of matches) targets.push({ clientId, qos });
    matches.clear();
    if (this.#cache.size >= MAX_CACHED_TOPICS) this.#cache.clear();
    this.#cache.set(topic, targets);
    return targets;
  }
}
