/**
 * Messages of shared subscriptions (MQTT 5.0 4.8.2): each message goes to one receiver per
 * matching group, across the cluster. The node where a message enters picks a local member or
 * another node that has members (shared_groups.ts `pick`); a node sent a message "for group g"
 * hands it to one of its members. A member whose connection ends gives its unacknowledged QoS 1
 * and its unsent messages of the group to another member.
 */
import type { QoS } from "../codec/packets.ts";
import type { Logger } from "../log.ts";
import type { Delivery } from "./delivery.ts";
import type { OutboundEntry, StoredMessage } from "./model.ts";
import type { Persistence } from "./persistence.ts";
import type { ClusterLink } from "./ports/cluster.ts";
import type { Session } from "./session.ts";
import {
  pick,
  type SharedGroup,
  type SharedGroups,
  type SharedMember,
  type SharedStrategy,
} from "./shared_groups.ts";

/** How often a message for a group may be passed on by a node that has no member any more. */
const MAX_HOPS = 1;

export class SharedDelivery {
  readonly #groups: SharedGroups;
  readonly #sessions: ReadonlyMap<string, Session>;
  readonly #delivery: Delivery;
  readonly #persistence: Persistence;
  readonly #cluster: ClusterLink | undefined;
  readonly #strategy: SharedStrategy;
  readonly #log: Logger;
  readonly #readable: (s: Session, topic: string) => boolean;
  readonly #load = (clientId: string): number => {
    const s = this.#sessions.get(clientId);
    return s ? s.inflight.size + s.queueLength : Infinity;
  };

  constructor(
    groups: SharedGroups,
    sessions: ReadonlyMap<string, Session>,
    delivery: Delivery,
    persistence: Persistence,
    cluster: ClusterLink | undefined,
    strategy: SharedStrategy,
    log: Logger,
    readable: (s: Session, topic: string) => boolean = () => true,
  ) {
    this.#groups = groups;
    this.#sessions = sessions;
    this.#delivery = delivery;
    this.#persistence = persistence;
    this.#cluster = cluster;
    this.#strategy = strategy;
    this.#log = log;
    this.#readable = readable;
  }

  /** Whether any group exists (else the publish path skips this part). */
  get active(): boolean {
    return this.#groups.active;
  }

  /** Whether some group (with members here or on another node) matches `topic`. */
  matches(topic: string): boolean {
    return this.#groups.match(topic).length > 0;
  }

  /**
   * A message accepted on this node: one receiver per matching group. Returns a promise while
   * QoS 1/2 copies for other nodes are being queued (the publisher's ack waits for it).
   */
  dispatch(msg: StoredMessage): void | Promise<void> {
    const groups = this.#groups.match(msg.topic);
    let waits: Promise<void>[] | null = null;
    for (let i = 0; i < groups.length; i++) {
      const r = this.#send(groups[i], msg, true, 0, null);
      if (typeof r === "object") (waits ??= []).push(r);
    }
    if (waits) return waits.length === 1 ? waits[0] : Promise.all(waits).then(() => {});
  }

  /**
   * Another node picked this node for group `key`: a local member receives it. With none left,
   * it goes on to another node that has members (once), else it has no receiver.
   */
  fromPeer(msg: StoredMessage, key: string, hops: number): void | Promise<void> {
    const g = this.#groups.get(key);
    // The node that picked this one cannot know its members' ACL: when none of them may read
    // the topic (partly denied filters), the message goes on like one for a node whose last
    // member left, to a member elsewhere.
    if (g && g.members.size > 0) {
      const r = this.#send(g, msg, false, hops, null);
      if (r !== false) return r === true ? undefined : r;
    }
    if (g && hops < MAX_HOPS) {
      const r = this.#send(g, msg, true, hops + 1, null);
      if (r !== false) return r === true ? undefined : r;
    }
    this.#log.debug(`message ${msg.topic} for shared group ${key}: no member may take it; dropped`);
  }

  /**
   * `s` goes offline (`ending`: its session ends too): what it holds for groups goes to other
   * members. QoS 1 in flight is sent again elsewhere (4.8.2 allows it at once); QoS 2 in flight
   * stays: it must be completed with this client or with nobody (MQTT-4.8.2-4, -5). Unsent
   * messages of a session that lives on move only to a member that is connected.
   */
  memberGone(s: Session, ending: boolean): void {
    if (!this.#groups.active || (s.inflight.size === 0 && s.queueLength === 0)) return;
    let moved: OutboundEntry[] | null = null;
    for (const e of s.inflight.values()) {
      if (e.share === undefined || e.state !== "sent" || e.qos !== 1) continue;
      if (!this.#hasOther(e.share, s, ending)) continue;
      (moved ??= []).push(e);
    }
    if (moved !== null) {
      for (const e of moved) {
        s.deleteInflight(e.packetId!);
        this.#persistence.removeOutbound(s, e.seq);
      }
    }
    if (s.queueLength > 0) {
      const gone = s.dropQueued((e) =>
        e.share === undefined || !this.#hasOther(e.share, s, ending)
      );
      for (const e of gone) this.#persistence.removeOutbound(s, e.seq);
      if (gone.length > 0) moved = moved === null ? gone : moved.concat(gone);
    }
    if (moved === null) return;
    this.#log.debug(`${s.clientId}: ${moved.length} shared-subscription message(s) redelivered`);
    for (const e of moved) {
      const g = this.#groups.get(e.share!);
      if (!g) continue;
      const r = this.#send(g, e.message, true, 0, s.clientId);
      if (typeof r === "object") r.catch(() => {});
    }
  }

  /** Whether group `key` has a receiver other than `s` (offline members only if `s` ends). */
  #hasOther(key: string, s: Session, ending: boolean): boolean {
    const g = this.#groups.get(key);
    if (!g) return false;
    if (g.remote.length > 0) return true;
    for (const id of g.members.keys()) {
      if (id === s.clientId) continue;
      if (ending || this.#sessions.get(id)?.client) return true;
    }
    return false;
  }

  /**
   * Picks the receiver in `g` and hands `msg` to it: connected local members and (`remote`)
   * other nodes; with none, offline local members (their sessions queue it). `except`: a member
   * that must not get it. A member whose filter overlaps a topic it may not read is no candidate
   * for a message it may not read (the ACL rule of partly denied filters, as for plain ones).
   * Returns false when there was no receiver, true or the forwarding's promise when there was.
   */
  #send(
    g: SharedGroup,
    msg: StoredMessage,
    remote: boolean,
    hops: number,
    except: string | null,
  ): boolean | Promise<void> {
    const members: string[] = [];
    for (const [id, m] of g.members) {
      if (id === except) continue;
      const s = this.#sessions.get(id);
      if (s?.client && this.#may(s, m, msg.topic)) members.push(id);
    }
    const nodes = remote && this.#cluster?.forwardShared ? g.remote : [];
    if (members.length === 0 && nodes.length === 0) {
      for (const [id, m] of g.members) {
        const s = this.#sessions.get(id);
        if (id !== except && s && this.#may(s, m, msg.topic)) members.push(id);
      }
    }
    const to = pick(g, this.#strategy, { members, nodes, load: this.#load });
    if (to === null) return false;
    if (to.charCodeAt(0) === 0x40 /* @ */) {
      return this.#cluster!.forwardShared!(msg, to.slice(1), g.name.key, hops) ?? true;
    }
    const s = this.#sessions.get(to)!;
    const m = g.members.get(to)!;
    // A live delivery: RETAIN 0 unless the member asked for Retain As Published (MQTT-3.3.1-12,
    // -13); the member's own Subscription Identifier (MQTT-3.3.4-3); the entry remembers its
    // group for a redelivery.
    this.#delivery.deliver(
      s,
      msg,
      (msg.qos < m.qos ? msg.qos : m.qos) as QoS,
      m.retainAsPublished && msg.retain,
      false,
      m.subscriptionIds,
      g.name.key,
    );
    return true;
  }

  #may(s: Session, m: SharedMember, topic: string): boolean {
    return !m.checkEachDelivery || this.#readable(s, topic);
  }
}
