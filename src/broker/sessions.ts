/**
 * Session lifecycle on this node: created, resumed or taken over at CONNECT, detached when the
 * connection ends (kept if persistent, discarded if not), expired, restored from the store, and
 * handed between nodes in a cluster. Every change is persisted through Persistence.
 */
import type { ConnectPacket } from "../codec/packets.ts";
import { ReasonCode } from "../codec/reason_codes.ts";
import type { Logger } from "../log.ts";
import type { ClientInfo, LoadedSession } from "./model.ts";
import { EXPIRY_NEVER } from "./model.ts";
import type { BrokerOptions } from "./options.ts";
import type { ClientOutput } from "./output.ts";
import type { Persistence } from "./persistence.ts";
import type { Authorizer } from "./ports/auth.ts";
import type { ClusterLink } from "./ports/cluster.ts";
import type { BrokerEvents } from "./ports/events.ts";
import { Session } from "./session.ts";
import type { BrokerStats } from "./stats.ts";
import type { SubscriptionTable } from "./subscriptions.ts";
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
}

export class Sessions {
  /** Every session this node holds, connected or offline, by client id. */
  readonly map: Map<string, Session>;
  readonly #d: SessionsDeps;
  #idCounter = 0;

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

  /** Rebuilds a session from the store and routes its subscriptions here. */
  restore(l: LoadedSession): Session {
    const s = new Session(l.session.clientId, l.session.expiryInterval, l.session.protocolVersion);
    s.disconnectedAt = l.session.disconnectedAt ?? Date.now();
    for (const sub of l.subscriptions) {
      s.setSubscription(sub);
      this.#d.subscriptions.add(sub.filter, s.clientId, sub.qos);
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
    this.map.set(s.clientId, s);
    return s;
  }

  /** Binds a connected client to its session (new, resumed or taken over). Returns session present. */
  attach(client: Attachable, p: ConnectPacket): boolean | Promise<boolean> {
    if (this.#d.cluster) return this.#attachClustered(this.#d.cluster, client, p);
    return this.#attach(client, p);
  }

  async #attachClustered(
    cluster: ClusterLink,
    client: Attachable,
    p: ConnectPacket,
  ): Promise<boolean> {
    const id = client.info.clientId;
    if (!this.map.has(id)) {
      // Another node may hold the session: it releases it (closing its connection, publishing
      // the will) and its state is then read from the shared store.
      await cluster.acquireSession(id);
      if (client.isClosed) return false;
      if (!this.map.has(id) && !p.clean) {
        const loaded = await this.#d.persistence.store.loadSession(id);
        if (client.isClosed) return false;
        if (loaded && !this.map.has(id)) this.restore(loaded);
      }
    }
    return this.#attach(client, p);
  }

  #attach(client: Attachable, p: ConnectPacket): boolean {
    const d = this.#d;
    const id = client.info.clientId;
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
      d.persistence.setExpiry(session, expiry);
      session.protocolVersion = client.version;
      // The rules may have changed while it was offline, and whoever resumes a session need not
      // be who made its subscriptions: it keeps only what this client may subscribe to.
      this.reauthorize(session, client.info);
    } else {
      session = new Session(id, expiry, client.version);
      this.map.set(id, session);
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
    for (const filter of s.subscriptions.keys()) d.subscriptions.remove(filter, s.clientId);
    this.map.delete(s.clientId);
    d.persistence.deleteSession(s);
    d.stats.sessions = this.map.size;
    d.stats.subscriptions = d.subscriptions.size;
  }

  /**
   * Drops the subscriptions of `s` that the authorizer no longer allows for `info` (after an ACL
   * reload, or when a session is resumed). Returns how many were dropped.
   */
  reauthorize(s: Session, info: ClientInfo): number {
    const d = this.#d;
    let dropped = 0;
    for (const filter of [...s.subscriptions.keys()]) {
      if (d.authorizer.canSubscribe(info, filter)) continue;
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
      for (const e of gone) d.persistence.removeOutbound(s, e.seq);
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
    for (const s of this.map.values()) {
      if (s.client || s.disconnectedAt === null || s.expiryInterval === EXPIRY_NEVER) continue;
      if (now - s.disconnectedAt >= s.expiryInterval * 1000) {
        this.#d.log.info(`session ${s.clientId} expired`);
        this.discard(s);
      }
    }
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
    const cur = this.map.get(clientId);
    if (cur) {
      d.volatile.settleSession(cur, true);
      for (const filter of cur.subscriptions.keys()) d.subscriptions.remove(filter, clientId);
      this.map.delete(clientId);
      d.stats.sessions = this.map.size;
    }
    await d.persistence.store.flush();
  }

  /** Takes over an offline session of a dead node so its subscriptions keep collecting messages. */
  adopt(loaded: LoadedSession): void {
    if (this.map.has(loaded.session.clientId)) return;
    const wasConnected = loaded.session.disconnectedAt === null;
    const will = loaded.session.will;
    const s = this.restore(loaded);
    this.#d.persistence.saveSession(s);
    if (wasConnected && will) {
      // Its node died with the connection open: an abnormal close, so the will is due.
      this.#d.wills.publishOrphan(s.clientId, {
        will,
        username: loaded.session.username,
        protocolVersion: s.protocolVersion,
      });
    }
  }
}
