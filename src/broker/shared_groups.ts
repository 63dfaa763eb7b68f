/**
 * Shared subscriptions (MQTT 5.0 4.8.2, also offered to 3.1.1 clients): `$share/{group}/{filter}`
 * and EMQX's `$queue/{filter}` (group `$queue`). This file knows the share names, the groups of
 * this node (members here, nodes elsewhere with members) and how one candidate is picked per
 * message; shared_delivery.ts moves the messages.
 */
import type { QoS } from "../codec/packets.ts";
import { TopicTree } from "./topic_tree.ts";
import { isValidFilter, type TopicLimits } from "./topic.ts";

/** How a group picks the one receiver of a message (`mqttwk.broker.shared-subscription-strategy`). */
export type SharedStrategy = "round_robin" | "random" | "sticky" | "least_inflight";

/** A shared subscription's parts: `key` is the whole filter as subscribed, the group's identity. */
export interface ShareName {
  key: string;
  group: string;
  filter: string;
}

/** Whether `filter` names a shared subscription (valid or not): `$share/...` or `$queue/...`. */
export function isShared(filter: string): boolean {
  return filter.charCodeAt(0) === 0x24 /* $ */ &&
    (filter.startsWith("$share/") || filter.startsWith("$queue/"));
}

/**
 * The parts of a shared filter, or null when it is not a valid one: the share name must be
 * non-empty and hold no `+`, `#` or `/` (MQTT-4.8.2-1, -2), and a valid topic filter follows it.
 */
export function parseShare(filter: string, limits?: TopicLimits): ShareName | null {
  let group: string;
  let inner: string;
  if (filter.startsWith("$queue/")) {
    group = "$queue";
    inner = filter.slice(7);
  } else if (filter.startsWith("$share/")) {
    const slash = filter.indexOf("/", 7);
    if (slash < 0) return null;
    group = filter.slice(7, slash);
    inner = filter.slice(slash + 1);
    if (group.length === 0 || group.includes("+") || group.includes("#")) return null;
  } else return null;
  if (!isValidFilter(inner, limits)) return null;
  return { key: filter, group, filter: inner };
}

/** The filter a subscription matches topics with (and is authorized for): without its share. */
export function topicFilterOf(filter: string): string {
  if (!isShared(filter)) return filter;
  return parseShare(filter)?.filter ?? filter;
}

/**
 * What a member's delivery needs of its subscription, made once when it joins (subscriptions.ts
 * builds it from its SubValue; this file does not import that one, which imports this one).
 */
export interface SharedMember {
  qos: QoS;
  /** MQTT 5 Retain As Published: the RETAIN flag is kept (else 0, MQTT-3.3.1-12 / -13). */
  retainAsPublished: boolean;
  /** The member subscription's identifier as sent with each PUBLISH (MQTT-3.3.4-3), or null. */
  subscriptionIds: number[] | null;
  /** The filter overlaps a topic the member may not read: each message is checked. */
  checkEachDelivery: boolean;
}

/** One group and filter: its members on this node, and the other nodes that have members. */
export class SharedGroup {
  readonly name: ShareName;
  /** Local members: client id -> their subscription's options. */
  readonly members = new Map<string, SharedMember>();
  /** Other nodes with at least one member (cluster). */
  remote: string[] = [];
  /** Round robin position among members and nodes (messages that entered here). */
  next = 0;
  /**
   * Round robin position among local members only (messages another node picked this node for):
   * kept apart so that they do not shift the turns of the messages that entered here.
   */
  nextLocal = 0;
  /** Sticky: the member (client id) or node ("@node") picked last, while it stays a candidate. */
  sticky: string | null = null;

  constructor(name: ShareName) {
    this.name = name;
  }

  get empty(): boolean {
    return this.members.size === 0 && this.remote.length === 0;
  }
}

/** A stream of unique topics must not grow the match cache without limit. */
const MAX_CACHED_TOPICS = 10_000;
const NONE: SharedGroup[] = [];

/** The groups known to this node, matched by topic (cached per topic until a group changes). */
export class SharedGroups {
  readonly #tree = new TopicTree<SharedGroup>();
  readonly #byKey = new Map<string, SharedGroup>();
  #cache = new Map<string, SharedGroup[]>();
  #generation = -1;
  /** Local memberships, for the subscription count. */
  #members = 0;

  /** Whether any group exists: the publish path skips everything shared while none does. */
  get active(): boolean {
    return this.#byKey.size > 0;
  }

  /** (group, member) pairs on this node. */
  get size(): number {
    return this.#members;
  }

  get(key: string): SharedGroup | undefined {
    return this.#byKey.get(key);
  }

  /** Groups with a member here, by key (the routes this node announces). */
  localKeys(): string[] {
    const out: string[] = [];
    for (const g of this.#byKey.values()) if (g.members.size > 0) out.push(g.name.key);
    return out;
  }

  /** Adds or updates a local member; true when it is the group's first member on this node. */
  join(key: string, clientId: string, member: SharedMember): boolean {
    const g = this.#group(key);
    if (!g) return false;
    const first = g.members.size === 0;
    if (!g.members.has(clientId)) this.#members++;
    g.members.set(clientId, member);
    return first;
  }

  /** Removes a local member; true when it was the group's last member on this node. */
  leave(key: string, clientId: string): boolean {
    const g = this.#byKey.get(key);
    if (!g?.members.delete(clientId)) return false;
    this.#members--;
    if (g.sticky === clientId) g.sticky = null;
    this.#forgetIfEmpty(g);
    return g.members.size === 0;
  }

  /** Another node gained its first (`present`) or lost its last member of group `key`. */
  remoteChanged(key: string, node: string, present: boolean): void {
    if (present) {
      const g = this.#group(key);
      if (g && !g.remote.includes(node)) g.remote = [...g.remote, node];
      return;
    }
    const g = this.#byKey.get(key);
    if (!g || !g.remote.includes(node)) return;
    g.remote = g.remote.filter((n) => n !== node);
    if (g.sticky === `@${node}`) g.sticky = null;
    this.#forgetIfEmpty(g);
  }

  /** The groups whose filter matches `topic`. */
  match(topic: string): SharedGroup[] {
    if (this.#tree.generation !== this.#generation) {
      this.#cache.clear();
      this.#generation = this.#tree.generation;
    }
    const cached = this.#cache.get(topic);
    if (cached) return cached;
    let groups = NONE;
    this.#tree.match(topic, (_, g) => {
      if (groups === NONE) groups = [];
      groups.push(g);
    });
    if (this.#cache.size >= MAX_CACHED_TOPICS) this.#cache.clear();
    this.#cache.set(topic, groups);
    return groups;
  }

  #group(key: string): SharedGroup | undefined {
    let g = this.#byKey.get(key);
    if (g) return g;
    const name = parseShare(key);
    if (!name) return undefined;
    g = new SharedGroup(name);
    this.#byKey.set(key, g);
    this.#tree.add(name.filter, name.group, g);
    return g;
  }

  #forgetIfEmpty(g: SharedGroup): void {
    if (!g.empty) return;
    this.#byKey.delete(g.name.key);
    this.#tree.remove(g.name.filter, g.name.group);
  }
}

/** A candidate for one message: a local member (client id) or another node ("@node"). */
export interface PickInput {
  /** Local members that may receive now (connected), by client id. */
  members: readonly string[];
  /** Other nodes with members. */
  nodes: readonly string[];
  /** Least in-flight: a local member's unacknowledged and queued messages. */
  load(clientId: string): number;
}

/**
 * Picks one candidate for a message by the strategy: a client id, "@node" for another node, or
 * null when there is none. Local members and other nodes are candidates alike, one node counting
 * as one candidate (the node then picks one of its members).
 */
export function pick(g: SharedGroup, strategy: SharedStrategy, c: PickInput): string | null {
  const nm = c.members.length;
  const total = nm + c.nodes.length;
  if (total === 0) return null;
  const at = (i: number) => i < nm ? c.members[i] : `@${c.nodes[i - nm]}`;
  switch (strategy) {
    case "random":
      return at(Math.floor(Math.random() * total));
    case "sticky": {
      const s = g.sticky;
      if (
        s !== null &&
        (s.charCodeAt(0) === 0x40 ? c.nodes.includes(s.slice(1)) : c.members.includes(s))
      ) return s;
      return g.sticky = at(Math.floor(Math.random() * total));
    }
    case "least_inflight": {
      // The least loaded local member, unless the turn is another node's: other nodes' loads
      // are not known here, so nodes take turns with this node's least loaded member.
      const turn = g.next++ % (c.nodes.length + (nm > 0 ? 1 : 0));
      if (g.next >= 0x40000000) g.next = 0;
      if (nm === 0 || turn > 0) return `@${c.nodes[nm === 0 ? turn : turn - 1]}`;
      let best = c.members[0];
      let bestLoad = c.load(best);
      for (let i = 1; i < nm && bestLoad > 0; i++) {
        const l = c.load(c.members[i]);
        if (l < bestLoad) {
          best = c.members[i];
          bestLoad = l;
        }
      }
      return best;
    }
    default: {
      if (c.nodes.length === 0) {
        const i = g.nextLocal++ % total;
        if (g.nextLocal >= 0x40000000) g.nextLocal = 0;
        return at(i);
      }
      const i = g.next++ % total;
      if (g.next >= 0x40000000) g.next = 0;
      return at(i);
    }
  }
}
