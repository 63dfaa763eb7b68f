/**
 * Session lifecycle on this node: created, resumed or taken over at CONNECT, detached when the
 * connection ends (kept if persistent, discarded if not), expired, restored from the store, and
 * handed between nodes in a cluster. Every change is persisted through Persistence.
 */
import type { ConnectPacket } from "../codec/packets.ts";
import { ReasonCode } from "../codec/reason_codes.ts";
import type { Logger } from "../log.ts";
import { hostOf } from "./admission.ts";
import type { BacklogLoader } from "./backlog.ts";
import { restoredInfo } from "./delayed_wills.ts";
import type { ClientInfo, LoadedSession } from "./model.ts";
import { EXPIRY_NEVER } from "./model.ts";
import type { BrokerOptions } from "./options.ts";
import type { ClientOutput } from "./output.ts";
import type { Persistence } from "./persistence.ts";
import type { Authorizer } from "./ports/auth.ts";
import type { ClusterLink } from "./ports/cluster.ts";
import type { BrokerEvents } from "./ports/events.ts";
import { type QueueBudget, Session } from "./session.ts";
import type { SharedDelivery } from "./shared_delivery.ts";
import { topicFilterOf } from "./shared_groups.ts";
import type { BrokerStats } from "./stats.ts";
import { type SubscriptionTable, subValue } from "./subscriptions.ts";
import type { VolatileDeliveries } from "./volatile.ts";
import type { Wills } from "./wills.ts";

/** What attaching needs of the connection: its identity, and a slot for its session. */
export interface Attachable extends ClientOutput {
  session: Session | null;
}

export interface SessionsDeps {
  options: BrokerOptions;
  log: Logger;
  stats: BrokerStats;
  persistence: Persistence;
  subscriptions: SubscriptionTable;
  volatile: VolatileDeliveries;
  authorizer: Authorizer;
  events: BrokerEvents;
  wills: Wills;
  cluster: ClusterLink | undefined;
  /** Shared subscriptions: what a leaving member held goes to another member. */
  shared?: SharedDelivery;
  /** The node-wide queued-bytes total every session adds to. */
  queueBudget: QueueBudget;
  /** Loads what a restored session's queue holds beyond its first page (backlog.ts). */
  backlog?: BacklogLoader;
}

/** Who is connecting, as the session limits see it. */
export interface SessionClaimant {
  clientId: string;
  remoteAddress: string;
  /** The username, only when authentication verified it; else the address is counted. */
  verifiedUser?: string;
}

export class Sessions {
  /** Every session this node holds, connected or offline, by client id. */
  readonly map: Map<string, Session>;
  readonly #d: SessionsDeps;
  #idCounter = 0;
  /** Persistent sessions held, and how many each owner (user or address) holds. */
  #persistent = 0;
  readonly #perOwner = new Map<string, number>();
  #refusals = 0;
  #refusalLoggedAt = 0;

  /** `map` is shared with the router, which looks sessions up by client id. */
  constructor(deps: SessionsDeps, map = new Map<string, Session>()) {
    this.#d = deps;
    this.map = map;
  }

  /** A client id for a 3.1.1 client that sent an empty one (MQTT-3.1.3-6). */
  assignClientId(): string {
    return `auto-${this.#d.options.nodeId}-${Date.now().toString(36)}-${
      (++this.#idCounter).toString(36)
    }`;
  }

  /**
   * The session expiry a CONNECT gets: for 3.1/3.1.1 0 (clean session) or the configured
   * interval; for 5.0 its Session Expiry Interval (absent: 0, the session ends with the
   * connection), capped by the configured interval (0xFFFFFFFF: no cap).
   */
  expiryFor(p: ConnectPacket): number {
    const cap = this.#d.options.sessionExpiryInterval || EXPIRY_NEVER;
    if (p.protocolVersion !== 5) return p.clean ? 0 : cap;
    const asked = p.properties?.sessionExpiryInterval ?? 0;
    return asked < cap ? asked : cap;
  }

  /**
   * A 5.0 DISCONNECT changed the session's expiry (MQTT-3.14.2-2 is checked by the caller):
   * capped like the CONNECT's; 0 ends the session with the connection.
   */
  changeExpiry(s: Session, asked: number): void {
    const cap = this.#d.options.sessionExpiryInterval || EXPIRY_NEVER;
    this.#d.persistence.setExpiry(s, asked < cap ? asked : cap);
  }

  /**
   * Rebuilds a session from the store and routes its subscriptions here. A queue loaded only in
   * part (`l.rest`), or one a takeover is still adding to (`open`), goes on loading afterwards.
   */
  restore(l: LoadedSession, open = false): Session {
    const s = new Session(
      l.session.clientId,
      l.session.expiryInterval,
      l.session.protocolVersion,
      this.#d.queueBudget,
    );
    s.disconnectedAt = l.session.disconnectedAt ?? Date.now();
    for (const sub of l.subscriptions) {
      s.setSubscription(sub);
      // Whether it needs a check per message is known once a client resumes it (reauthorize).
      this.#d.subscriptions.add(sub.filter, s.clientId, subValue(sub));
    }
    let lastPid = 0;
    for (const e of l.outbound) {
      if (e.state === "queued") s.enqueue(e);
      else if (e.packetId) {
        s.setInflight(e.packetId, e);
        lastPid = e.packetId;
      }
      if (e.seq >= s.nextSeq) s.nextSeq = e.seq + 1;
    }
    if (lastPid) s.notePacketId(lastPid);
    for (const id of l.inboundQos2) s.addInboundQos2(id);
    this.#add(s);
    this.#d.backlog?.start(s, l.rest ?? null, open);
    const r = l.session;
    if (r.will !== undefined && r.willDueAt !== undefined) {
      // A delayed will that was waiting when the record was written waits on here.
      const info = restoredInfo(s.clientId, r.username, s.protocolVersion, "store");
      this.#d.wills.delayed.hold(s, info, r.will, r.willDueAt);
    }
    return s;
  }

  /**
   * Why a CONNECT may not have a session, or null. Only a CONNECT that would create a new
   * persistent session is limited: resuming one, or a clean session (bounded by the connection
   * limits), always may.
   */
  refusal(who: SessionClaimant, p: Pick<ConnectPacket, "clean">): string | null {
    if (p.clean || this.map.get(who.clientId)?.persistent) return null;
    const o = this.#d.options;
    let why: string | null = null;
    if (o.maxSessions > 0 && this.#persistent >= o.maxSessions) {
      why = `session limit ${o.maxSessions} reached (mqttwk.broker.max-sessions)`;
    } else {
      const owner = ownerOf(who);
      const byUser = who.verifiedUser !== undefined;
      const max = byUser ? o.maxSessionsPerUser : o.maxSessionsPerAddress;
      if (max > 0 && (this.#perOwner.get(owner) ?? 0) >= max) {
        why = byUser
          ? `per-user session limit ${max} reached for user ${JSON.stringify(who.verifiedUser)}` +
            ` (mqttwk.broker.max-sessions-per-user)`
          : `per-address session limit ${max} reached for ${hostOf(who.remoteAddress)}` +
            ` (mqttwk.broker.max-sessions-per-address)`;
      }
    }
    if (why !== null) this.#noteRefusal(why, who.clientId);
    return why;
  }

  /** One log line per second at most, with the count, however many CONNECTs are refused. */
  #noteRefusal(why: string, clientId: string): void {
    this.#refusals++;
    const now = Date.now();
    if (now - this.#refusalLoggedAt < 1000) return;
    this.#refusalLoggedAt = now;
    this.#d.log.warn(
      `refusing a new persistent session for client ${JSON.stringify(clientId)}: ${why} ` +
        `(CONNACK 0x03; ${this.#refusals} refused so far)`,
    );
  }

  /** Persistent sessions held, and by owner, for the limits (and tests). */
  get persistentCount(): number {
    return this.#persistent;
  }

  /** Persistent sessions `owner` ("user:NAME" or "addr:IP") holds. */
  heldBy(owner: string): number {
    return this.#perOwner.get(owner) ?? 0;
  }

  #add(s: Session): void {
    this.map.set(s.clientId, s);
    if (s.persistent) this.#persistent++;
    this.#count(s.owner, 1);
  }

  #remove(s: Session): void {
    if (this.map.get(s.clientId) !== s) return;
    this.map.delete(s.clientId);
    if (s.persistent) this.#persistent--;
    this.#count(s.owner, -1);
    s.releaseQueue();
  }

  #count(owner: string | null, delta: number): void {
    if (owner === null) return;
    const n = (this.#perOwner.get(owner) ?? 0) + delta;
    if (n <= 0) this.#perOwner.delete(owner);
    else this.#perOwner.set(owner, n);
  }

  /**
   * Binds a connected client to its session (new, resumed or taken over). Returns session
   * present, or null when a session limit refuses it (logged; the caller answers CONNACK 0x03).
   * `verifiedUser`: the username, when authentication verified it.
   */
  attach(
    client: Attachable,
    p: ConnectPacket,
    verifiedUser?: string,
  ): boolean | null | Promise<boolean | null> {
    if (this.#d.cluster) return this.#attachClustered(this.#d.cluster, client, p, verifiedUser);
    return this.#attach(client, p, verifiedUser);
  }

  async #attachClustered(
    cluster: ClusterLink,
    client: Attachable,
    p: ConnectPacket,
    verifiedUser: string | undefined,
  ): Promise<boolean | null> {
    const id = client.info.clientId;
    // Asked even for a session held here: the claim is checked against this node's lease, so a
    // node that was taken over while frozen never resumes its stale copy (session present).
    try {
      const held = await cluster.acquireSession(id);
      if (client.isClosed) return false;
      // Another node may have held the session: it released it (closing its connection,
      // publishing the will) and its state is then read from the shared store. A Clean Start
      // still reads a record some node held: that session ends now, and a will waiting in it
      // for its delay is due (MQTT-3.1.3-9).
      if (!this.map.has(id) && (!p.clean || held !== false)) {
        const loaded = await this.#d.persistence.store.loadSession(id);
        if (client.isClosed) return false;
        if (loaded && !this.map.has(id)) {
          if (p.clean) this.#endStored(loaded);
          else this.restore(loaded);
        }
      }
      return this.#attach(client, p, verifiedUser);
    } finally {
      cluster.sessionResumed?.(id);
    }
  }

  /**
   * A session another node held ends because its client started clean here: its record goes
   * and a will it still had is published, as discard() does for a session held here.
   */
  #endStored(l: LoadedSession): void {
    const r = l.session;
    this.#d.persistence.deleteRecord(r.clientId);
    // A waiting delayed will, or the will of a connection whose node died before its takeover.
    if (r.will !== undefined && (r.willDueAt !== undefined || r.disconnectedAt === null)) {
      const info = restoredInfo(r.clientId, r.username, r.protocolVersion, "cluster");
      this.#d.wills.publish(info, r.will);
    }
  }

  #attach(client: Attachable, p: ConnectPacket, verifiedUser?: string): boolean | null {
    const d = this.#d;
    const id = client.info.clientId;
    const claimant = { clientId: id, remoteAddress: client.info.remoteAddress, verifiedUser };
    if (this.refusal(claimant, p) !== null) return null;
    let session = this.map.get(id);
    if (session?.client) {
      d.log.info(`client ${id} taken over by a new connection from ${client.info.remoteAddress}`);
      session.client.close("session taken over", true, ReasonCode.SessionTakenOver);
      session = this.map.get(id);
    }
    const expiry = this.expiryFor(p);
    let present = false;
    if (session && (p.clean || !session.persistent)) {
      this.discard(session);
      session = undefined;
    }
    if (session) {
      present = true;
      // Resumed in time: a will still waiting for its delay is never sent (MQTT-3.1.3-9).
      d.wills.delayed.cancel(id);
      d.persistence.setExpiry(session, expiry);
      session.protocolVersion = client.version;
      // The rules may have changed while it was offline, and whoever resumes a session need not
      // be who made its subscriptions: it keeps only what this client may subscribe to.
      this.reauthorize(session, client.info);
      if (session.owner === null) {
        // Restored from the store: it counts against whoever resumes it from now on.
        session.owner = ownerOf(claimant);
        this.#count(session.owner, 1);
      }
    } else {
      session = new Session(id, expiry, client.version, d.queueBudget);
      // Only persistent sessions outlive their connection; clean ones are bounded by the
      // connection limits and count against nobody.
      if (expiry > 0) {
        session.owner = ownerOf(claimant);
      }
      this.#add(session);
    }
    session.client = client;
    session.disconnectedAt = null;
    client.session = session;
    // The will is kept so that, in a cluster, the node adopting this session after a crash of
    // ours can publish it.
    if (session.persistent) d.persistence.saveSession(session, p.will, client.info.username);
    else if (p.will) d.wills.keep(client, client.info, p.will);
    d.stats.sessions = this.map.size;
    d.events.clientConnected?.(client.info);
    return present;
  }

  /** The connection of `client` ended: its session goes offline (persistent) or ends. */
  detach(client: Attachable): void {
    const s = client.session;
    if (!s || s.client !== client) return;
    s.client = null;
    // Offline now: its unacknowledged deliveries must be in the store (or, if the session
    // ends, simply stop holding up their publishers).
    this.#d.volatile.settleSession(s, s.persistent);
    if (s.persistent) {
      this.#d.shared?.memberGone(s, false);
      s.disconnectedAt = Date.now();
      this.#d.persistence.saveSession(s);
    } else {
      this.discard(s);
    }
  }

  /** Ends a session: its subscriptions, queue and stored state go. */
  discard(s: Session): void {
    const d = this.#d;
    d.volatile.settleSession(s, false);
    d.shared?.memberGone(s, true);
    for (const filter of s.subscriptions.keys()) d.subscriptions.remove(filter, s.clientId);
    this.#remove(s);
    d.persistence.deleteSession(s);
    d.stats.sessions = this.map.size;
    d.stats.subscriptions = d.subscriptions.size;
    // MQTT-3.1.3-9: a will waiting for its delay is published when the session ends.
    d.wills.delayed.sessionEnded(s.clientId);
  }

  /**
   * Drops the subscriptions of `s` that the authorizer no longer allows for `info` (after an ACL
   * reload, or when a session is resumed). Returns how many were dropped.
   */
  reauthorize(s: Session, info: ClientInfo): number {
    const d = this.#d;
    let dropped = 0;
    for (const [filter, sub] of [...s.subscriptions]) {
      // A shared subscription is authorized by its filter without the share name.
      const aclFilter = topicFilterOf(filter);
      if (d.authorizer.canSubscribe(info, aclFilter)) {
        // Who may read what may have changed: a filter overlapping a denied topic is checked
        // per message from now on, one that no longer does is not.
        const checkEach = d.authorizer.checkEachDelivery;
        if (checkEach) {
          d.subscriptions.add(
            filter,
            s.clientId,
            subValue(sub, checkEach.call(d.authorizer, info, aclFilter)),
          );
        }
        continue;
      }
      s.deleteSubscription(filter);
      d.subscriptions.remove(filter, s.clientId);
      d.persistence.removeSubscription(s, filter);
      d.events.unsubscribed?.(info, filter);
      d.log.info(`client ${s.clientId}: subscription ${filter} dropped: no longer authorized`);
      dropped++;
    }
    if (dropped > 0) d.stats.subscriptions = d.subscriptions.size;
    // Queued messages it may no longer read go too; in-flight ones were already sent once and
    // finish their flow (a QoS 2 exchange cut in half would break exactly-once).
    if (s.queueLength > 0) {
      const gone = s.dropQueued((e) => d.authorizer.canSubscribe(info, e.message.topic));
      for (const e of gone) {
        // One held unwritten (volatile.ts) is settled instead: never written, nothing to remove.
        if (!d.volatile.acknowledged(e)) d.persistence.removeOutbound(s, e.seq);
      }
      if (gone.length > 0) {
        d.log.info(
          `client ${s.clientId}: ${gone.length} queued message(s) dropped: no longer authorized`,
        );
      }
    }
    return dropped;
  }

  /** Ends offline sessions whose expiry interval has passed. */
  expire(now: number): void {
    // forEach: no iteration result object per session (see maintenance.ts).
    this.map.forEach((s) => {
      if (s.client || s.disconnectedAt === null || s.expiryInterval === EXPIRY_NEVER) return;
      if (now - s.disconnectedAt >= s.expiryInterval * 1000) {
        this.#d.log.info(`session ${s.clientId} expired`);
        this.#d.stats.sessionsExpired++;
        this.discard(s);
      }
    });
  }

  /**
   * Another node takes over `clientId`: the local connection closes (its will is published),
   * unacknowledged deliveries are written, and the session is forgotten here without deleting
   * it from the shared store, where the new owner resumes it.
   */
  async release(clientId: string): Promise<void> {
    const d = this.#d;
    const s = this.map.get(clientId);
    if (!s) return;
    if (s.client) {
      d.log.info(`client ${clientId} taken over by another node`);
      s.client.close("session taken over by another node", true, ReasonCode.SessionTakenOver);
    }
    // A will waiting here stays in the shared record; the node that resumes the session cancels it.
    d.wills.delayed.forget(clientId);
    const cur = this.map.get(clientId);
    if (cur) {
      d.volatile.settleSession(cur, true);
      for (const filter of cur.subscriptions.keys()) d.subscriptions.remove(filter, clientId);
      this.#remove(cur);
      d.stats.sessions = this.map.size;
    }
    await d.persistence.store.flush();
  }

  /**
   * This node was fenced: every client is closed without its will (the node that took the
   * sessions over publishes those) and every session forgotten without a store write.
   */
  abandonAll(reason: string): { clients: number; sessions: number } {
    const d = this.#d;
    let clients = 0;
    for (const s of [...this.map.values()]) {
      if (!s.client) continue;
      clients++;
      s.client.close(reason, false, ReasonCode.SessionTakenOver);
    }
    let sessions = 0;
    for (const s of [...this.map.values()]) {
      sessions++;
      d.wills.delayed.forget(s.clientId);
      d.volatile.settleSession(s, false);
      d.shared?.memberGone(s, true);
      for (const filter of s.subscriptions.keys()) d.subscriptions.remove(filter, s.clientId);
      this.#remove(s);
    }
    d.stats.sessions = this.map.size;
    d.stats.subscriptions = d.subscriptions.size;
    return { clients, sessions };
  }

  /**
   * Takes over an offline session of a dead node so its subscriptions keep collecting messages.
   * `draining`: the dead node's stream backlog is still to come (see backlogDrained).
   */
  adopt(loaded: LoadedSession, draining = false): void {
    if (this.map.has(loaded.session.clientId)) return;
    const wasConnected = loaded.session.disconnectedAt === null;
    const will = loaded.session.will;
    const s = this.restore(loaded, draining);
    const delayed = this.#d.wills.delayed;
    // restore() keeps a delayed will the dead node had waiting, in the record it writes.
    if (!delayed.has(s.clientId)) this.#d.persistence.saveSession(s);
    if (wasConnected && will) {
      // Its node died with the connection open: an abnormal close, so the will is due, after its
      // Will Delay Interval if it has one (MQTT-3.1.3-9), counted from now.
      const username = loaded.session.username;
      const delay = will.properties?.willDelayInterval ?? 0;
      if (delay > 0) {
        const info = restoredInfo(s.clientId, username, s.protocolVersion, "cluster");
        delayed.hold(s, info, will, Date.now() + Math.min(delay, s.expiryInterval) * 1000);
      } else {
        this.#d.wills.publishOrphan(s.clientId, {
          will,
          username,
          protocolVersion: s.protocolVersion,
        });
      }
    }
  }
}

/** The key a session counts against: its verified user, else its client's address. */
export function ownerOf(who: SessionClaimant): string {
  return who.verifiedUser !== undefined
    ? `user:${who.verifiedUser}`
    : `addr:${hostOf(who.remoteAddress)}`;
}
