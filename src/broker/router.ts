/**
 * Routing of one message to this node's subscribers: each matching session receives it once, at
 * the highest QoS among its matching subscriptions (capped by the message's QoS), with the
 * Subscription Identifiers of all of them (MQTT-3.3.4-3..-5).
 */
import type { QoS } from "../codec/packets.ts";
import type { Delivery } from "./delivery.ts";
import type { StoredMessage } from "./model.ts";
import type { Session } from "./session.ts";
import type { SubscriptionTable, SubValue } from "./subscriptions.ts";
import { topicMatches } from "./topic.ts";
import { TopicIndex } from "./topic_index.ts";

/** One session's share of a topic: its matching subscriptions folded into one delivery. */
interface RouteTarget {
  clientId: string;
  qos: QoS;
  /** Some matching subscription has Retain As Published. */
  retainAsPublished: boolean;
  /** Identifiers of the matching subscriptions, ascending; null when none has one. */
  subscriptionIds: number[] | null;
  /** Some matching subscription overlaps a denied topic: the authorizer decides per message. */
  checkEachDelivery: boolean;
  /**
   * The target for messages its own client published: undefined when no matching subscription
   * has No Local (then this one), null when all have it (not delivered, MQTT-3.8.3-3).
   */
  own: RouteTarget | null | undefined;
}

/** A stream of unique topics must not grow the route cache without limit. */
const MAX_CACHED_TOPICS = 10_000;
/**
 * A session with more filters than this has a changed route recomputed from the tree instead of
 * patched (patching tests each of its filters against the topic).
 */
const MAX_PATCH_FILTERS = 64;
/**
 * Most sessions a cached route may have waiting for a patch: past it the route is recomputed
 * from the tree on its next message, which costs no more.
 */
const MAX_PENDING = 64;
/**
 * Most cached routes one subscription change may mark. A filter matching more (a `#` over
 * thousands of cached topics) clears the cache instead: a change then costs what it did before
 * the precise invalidation, and never more.
 */
const MAX_MARKS = 4_096;

/**
 * A cached route: its targets, and the sessions whose share changed since (a subscription of
 * theirs matching the topic was added, replaced or removed), patched in on the next message.
 */
interface CachedRoute {
  /**
   * Replaced, never changed in place, by a patch: a route in progress keeps iterating the array
   * it started with.
   */
  targets: RouteTarget[];
  pending: Set<string> | null;
}

export class Router {
  readonly #subscriptions: SubscriptionTable;
  readonly #sessions: ReadonlyMap<string, Session>;
  readonly #delivery: Delivery;
  readonly #readable: (s: Session, topic: string) => boolean;
  #matches = new Map<string, SubValue[]>();
  /**
   * topic -> matching sessions. A subscription change marks the cached routes of the topics its
   * filter matches (found through #topics) with its session; the next message to such a topic
   * patches that session's share in. Under subscription churn the other topics' routes, and the
   * other sessions' shares of the touched ones, stay cached, and a change costs a mark per
   * route, not a patch: changes may well outnumber messages.
   */
  #cache = new Map<string, CachedRoute>();
  /** The topics cached since the last clear, searchable by filter. */
  #topics = new TopicIndex();
  /** Each session's filters in the tree (client id -> filter -> value), for the patches. */
  #filters = new Map<string, Map<string, SubValue>>();
  /**
   * Topics routed once and not cached: a topic is cached when it comes again. Most of a stream
   * of unique topics is then never cached, whose routes every subscription change matching them
   * would otherwise mark.
   */
  #seen = new Set<string>();
  /** How many more routes the change under way may mark (see MAX_MARKS). */
  #marks = 0;

  /**
   * `readable`: whether a session may receive a topic, asked only for subscriptions that
   * overlap a denied topic.
   */
  constructor(
    subscriptions: SubscriptionTable,
    sessions: ReadonlyMap<string, Session>,
    delivery: Delivery,
    readable: (s: Session, topic: string) => boolean = () => true,
  ) {
    this.#subscriptions = subscriptions;
    this.#sessions = sessions;
    this.#delivery = delivery;
    this.#readable = readable;
    const tree = subscriptions.tree;
    tree.forEach((filter, owner, value) => this.#remember(filter, owner, value));
    tree.observe((filter, owner, value) => this.#changed(filter, owner, value));
  }

  /**
   * Delivers to local subscribers: once per session, at the highest matching QoS. Returns how
   * many sessions have a matching subscription (0: no matching subscribers here).
   */
  route(msg: StoredMessage): number {
    const targets = this.#targets(msg.topic);
    const single = targets.length === 1;
    for (let i = 0; i < targets.length; i++) this.#deliver(targets[i], msg, single);
    return targets.length;
  }

  /**
   * Like route, but only to the sessions named (a copy meant for them alone, e.g. passed on by
   * the node they moved from), each only if it still subscribes to the topic.
   */
  routeTo(msg: StoredMessage, clientIds: readonly string[]): void {
    const targets = this.#targets(msg.topic);
    for (let i = 0; i < targets.length; i++) {
      if (clientIds.includes(targets[i].clientId)) this.#deliver(targets[i], msg, false);
    }
  }

  #deliver(target: RouteTarget, msg: StoredMessage, single: boolean): void {
    let t: RouteTarget | null = target;
    if (t.own !== undefined && t.clientId === msg.origin) {
      t = t.own;
      if (t === null) return;
    }
    const s = this.#sessions.get(t.clientId);
    if (!s) return;
    if (t.checkEachDelivery && !this.#readable(s, msg.topic)) return;
    this.#delivery.deliver(
      s,
      msg,
      (msg.qos < t.qos ? msg.qos : t.qos) as QoS,
      // MQTT-3.3.1-12 / -13: RETAIN 0 on live deliveries unless Retain As Published.
      t.retainAsPublished && msg.retain,
      single,
      t.subscriptionIds,
    );
  }

  #targets(topic: string): RouteTarget[] {
    const cached = this.#cache.get(topic);
    if (cached !== undefined) {
      if (cached.pending === null) return cached.targets;
      const patched = this.#patch(topic, cached.targets, cached.pending);
      if (patched !== null) {
        cached.targets = patched;
        cached.pending = null;
        return patched;
      }
    }
    const targets = this.#match(topic);
    if (cached !== undefined) {
      cached.targets = targets;
      cached.pending = null;
      return targets;
    }
    if (!this.#seen.delete(topic)) {
      if (this.#seen.size >= MAX_CACHED_TOPICS) this.#seen.clear();
      this.#seen.add(topic);
      return targets;
    }
    // The index also keeps topics whose route was dropped (#changed): it is bounded alike.
    if (this.#cache.size >= MAX_CACHED_TOPICS || this.#topics.size >= MAX_CACHED_TOPICS) {
      this.#cache.clear();
      this.#topics.clear();
    }
    this.#cache.set(topic, { targets, pending: null });
    this.#topics.add(topic);
    return targets;
  }

  /**
   * The subscriptions matching `topic`, by session. Apart from #targets: its closure would make
   * V8 allocate a context on every call, also for the cached answers.
   */
  #match(topic: string): RouteTarget[] {
    const matches = this.#matches;
    this.#subscriptions.tree.match(topic, (owner, v) => {
      const prev = matches.get(owner);
      if (prev === undefined) matches.set(owner, [v]);
      else prev.push(v);
    });
    const targets: RouteTarget[] = [];
    for (const [clientId, subs] of matches) targets.push(target(clientId, subs));
    matches.clear();
    return targets;
  }

  #remember(filter: string, owner: string, value: SubValue | undefined): void {
    let filters = this.#filters.get(owner);
    if (value !== undefined) {
      if (filters === undefined) this.#filters.set(owner, filters = new Map());
      filters.set(filter, value);
    } else if (filters !== undefined) {
      filters.delete(filter);
      if (filters.size === 0) this.#filters.delete(owner);
    }
  }

  /** A session's filter was added, replaced or removed: its routes for what it matches change. */
  #changed(filter: string, owner: string, value: SubValue | undefined): void {
    this.#remember(filter, owner, value);
    if (this.#cache.size === 0) return;
    this.#marks = MAX_MARKS;
    if (!this.#topics.match(filter, (topic) => this.#mark(topic, owner))) {
      this.#cache.clear();
      this.#topics.clear();
    }
  }

  /** Marks `owner`'s share of the cached route of `topic` as changed; false when out of marks. */
  #mark(topic: string, owner: string): boolean {
    if (--this.#marks < 0) return false;
    const cached = this.#cache.get(topic);
    if (cached === undefined) return true;
    const pending = cached.pending ??= new Set();
    pending.add(owner);
    if (pending.size > MAX_PENDING) {
      // Recomputed on its next message, and cached again then (it is known to be in use).
      this.#cache.delete(topic);
      this.#seen.add(topic);
    }
    return true;
  }

  /**
   * `targets` with the shares of the `pending` sessions recomputed from their filters, or null
   * when one of them has too many filters to patch (the caller recomputes from the tree).
   */
  #patch(topic: string, targets: RouteTarget[], pending: Set<string>): RouteTarget[] | null {
    const next: RouteTarget[] = [];
    for (let i = 0; i < targets.length; i++) {
      if (!pending.has(targets[i].clientId)) next.push(targets[i]);
    }
    for (const owner of pending) {
      const filters = this.#filters.get(owner);
      if (filters === undefined) continue;
      if (filters.size > MAX_PATCH_FILTERS) return null;
      let subs: SubValue[] | null = null;
      for (const [f, v] of filters) if (topicMatches(f, topic)) (subs ??= []).push(v);
      if (subs !== null) next.push(target(owner, subs));
    }
    return next;
  }
}

function target(clientId: string, subs: SubValue[]): RouteTarget {
  const t = fold(clientId, subs);
  if (subs.some((v) => v.noLocal)) {
    const others = subs.filter((v) => !v.noLocal);
    t.own = others.length > 0 ? fold(clientId, others) : null;
  }
  return t;
}

function fold(clientId: string, subs: SubValue[]): RouteTarget {
  let qos: QoS = 0;
  let retainAsPublished = false;
  let checkEachDelivery = false;
  let ids: number[] | null = null;
  for (const v of subs) {
    if (v.qos > qos) qos = v.qos;
    if (v.retainAsPublished) retainAsPublished = true;
    if (v.checkEachDelivery) checkEachDelivery = true;
    if (v.subscriptionId !== 0) (ids ??= []).push(v.subscriptionId);
  }
  // Several subscriptions may share an identifier; each is sent once.
  if (ids !== null && ids.length > 1) ids = [...new Set(ids)].sort((a, b) => a - b);
  return {
    clientId,
    qos,
    retainAsPublished,
    subscriptionIds: ids,
    checkEachDelivery,
    own: undefined,
  };
}
