/**
 * The broker core: sessions, routing, QoS state machines, retained messages and wills.
 * It imports no Deno API; transports hand it ByteConnections, tests drive it over in-memory
 * streams.
 */
import { encode } from "../codec/encoder.ts";
import { ProtocolError } from "../codec/errors.ts";
import type {
  ConnectPacket,
  PublishPacket,
  QoS,
  SubscribePacket,
  UnsubscribePacket,
  Will,
} from "../codec/packets.ts";
import { ReasonCode, SUBACK_FAILURE } from "../codec/reason_codes.ts";
import type { Logger } from "../log.ts";
import type { LoadedSession, OutboundEntry, StoredMessage } from "./model.ts";
import type { Store } from "./ports/store.ts";
import { EXPIRY_NEVER } from "./model.ts";
import type { ByteConnection } from "./ports/connection.ts";
import { Client } from "./client.ts";
import type { ClusterHost, ClusterLink, KeptWill } from "./ports/cluster.ts";
import type { Authenticator, Authorizer } from "./ports/auth.ts";
import type { BrokerEvents } from "./ports/events.ts";
import type { ClientInfo } from "./model.ts";
import type { MessageSink } from "./ports/sink.ts";
import { allowAll } from "./ports/auth.ts";
import type { BrokerOptions } from "./options.ts";
import { publishTemplate } from "./outgoing.ts";
import { RetainedIndex } from "./retained.ts";
import { Session } from "./session.ts";
import { VolatileDeliveries } from "./volatile.ts";
import { isValidFilter, isValidTopicName, type TopicLimits } from "./topic.ts";
import { TopicTree } from "./topic_tree.ts";

export interface BrokerDeps {
  options: BrokerOptions;
  store: Store;
  log: Logger;
  authenticator?: Authenticator;
  authorizer?: Authorizer;
  sinks?: MessageSink[];
  events?: BrokerEvents;
  /**
   * Admission control before any byte is read (rate limits, bans): returns a reason to refuse
   * the connection, or null to admit it.
   */
  admit?: (remoteAddress: string) => string | null;
  /** Present when clustering is on; the store is then shared by all nodes. */
  cluster?: ClusterLink;
}

interface SubValue {
  qos: QoS;
}

interface RouteTarget {
  clientId: string;
  qos: QoS;
}

export interface BrokerStats {
  connections: number;
  sessions: number;
  subscriptions: number;
  retained: number;
  messagesIn: number;
  messagesOut: number;
  dropped: number;
}

const RESOLVED = Promise.resolve();

/** Refused connections allowed to wait for their CONNACK 0x03 at the same time. */
const MAX_REFUSING = 100;

export class Broker implements ClusterHost {
  readonly options: BrokerOptions;
  readonly store: Store;
  readonly log: Logger;
  authenticator: Authenticator;
  authorizer: Authorizer;
  readonly sinks: MessageSink[];
  readonly events: BrokerEvents;
  readonly #admit: ((remoteAddress: string) => string | null) | undefined;
  readonly cluster: ClusterLink | undefined;

  readonly sessions = new Map<string, Session>();
  readonly clients = new Set<Client>();
  readonly #perIp = new Map<string, number>();
  readonly tree = new TopicTree<SubValue>();
  readonly retained = new RetainedIndex();
  readonly #limits: TopicLimits;

  /** QoS 1 deliveries to online persistent sessions not written yet (see volatile.ts). */
  readonly #volatile = new VolatileDeliveries((s, e) => {
    this.store.putOutbound(s.clientId, e);
    this.#touch();
  });
  #msgCounter = 0;
  #unackedWarned = 0;
  /** Node id plus start time: message ids stay unique across restarts of the same node. */
  readonly #idPrefix: string;
  #idCounter = 0;
  #dirty = false;
  #flushScheduled = false;
  #latestFlush: Promise<void> | null = null;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closing = false;
  #congested = new Set<Client>();

  readonly stats: BrokerStats = {
    connections: 0,
    sessions: 0,
    subscriptions: 0,
    retained: 0,
    messagesIn: 0,
    messagesOut: 0,
    dropped: 0,
  };

  constructor(deps: BrokerDeps) {
    this.options = deps.options;
    this.store = deps.store;
    this.log = deps.log;
    this.authenticator = deps.authenticator ?? allowAll;
    this.authorizer = deps.authorizer ?? allowAll;
    this.sinks = deps.sinks ?? [];
    this.events = deps.events ?? {};
    this.#admit = deps.admit;
    this.#idPrefix = `${this.options.nodeId}-${Date.now().toString(36)}-`;
    this.cluster = deps.cluster;
    this.#limits = {
      maxLevels: this.options.maxTopicLevels,
      maxLength: this.options.maxTopicLength,
    };
  }

  // ------------------------------------------------------------------ lifecycle

  /** Opens the store and restores persistent sessions and retained messages. */
  async start(): Promise<void> {
    await this.store.open();
    const expired = await this.store.deleteExpiredSessions(Date.now());
    if (expired.length) this.log.info(`removed ${expired.length} expired sessions`);
    for (const m of await this.store.loadRetained()) this.retained.set(m.topic, m);
    // In a cluster the store is shared: sessions are loaded when their client connects here.
    const loaded = this.cluster ? [] : await this.store.loadSessions();
    for (const l of loaded) this.#restore(l);
    if (loaded.length || this.retained.size) {
      this.log.info(
        `restored ${loaded.length} sessions and ${this.retained.size} retained messages`,
      );
    }
    this.#timer = setInterval(() => this.#tick(), 1000);
    if (this.cluster) await this.cluster.start(this);
  }

  get nodeId(): string {
    return this.options.nodeId;
  }

  /** Returns a promise while a new route is being announced to the cluster. */
  #subAdd(filter: string, clientId: string, qos: QoS): void | Promise<void> {
    if (this.tree.add(filter, clientId, { qos })) return this.cluster?.routeAdded(filter);
  }

  #subRemove(filter: string, clientId: string): void {
    if (this.tree.remove(filter, clientId) === "last") this.cluster?.routeRemoved(filter);
  }

  #restore(l: LoadedSession): Session {
    const s = new Session(l.session.clientId, l.session.expiryInterval, l.session.protocolVersion);
    s.disconnectedAt = l.session.disconnectedAt ?? Date.now();
    for (const sub of l.subscriptions) {
      s.setSubscription(sub);
      this.#subAdd(sub.filter, s.clientId, sub.qos);
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
    this.sessions.set(s.clientId, s);
    return s;
  }

  /** Stops serving: closes every connection (letting queued output drain briefly), then the store. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearInterval(this.#timer);
    const waits: Promise<void>[] = [];
    for (const c of this.clients) {
      waits.push(
        new Promise<void>((resolve) => {
          const poll = () => c.state === "closed" ? resolve() : setTimeout(poll, 10);
          poll();
        }),
      );
      c.end("server shutting down");
    }
    await Promise.race([Promise.all(waits), new Promise((r) => setTimeout(r, 3000))]);
    for (const c of this.clients) c.close("server shutting down", false);
    this.#volatile.stop();
    if (this.cluster) {
      await this.cluster.stop().catch((err) =>
        this.log.warn(`cluster stop failed: ${err?.message ?? err}`)
      );
    }
    try {
      await this.store.flush();
    } finally {
      await this.store.close();
    }
  }

  /** Serves one connection until it ends. */
  handleConnection(conn: ByteConnection): void {
    const ip = hostOf(conn.remoteAddress);
    let why: string | null = null;
    if (this.#closing) why = "server shutting down";
    else if (this.clients.size - this.#refusing >= this.options.maxConnections) {
      why = `connection limit ${this.options.maxConnections} reached`;
    } else if (
      this.options.maxConnectionsPerIp > 0 &&
      (this.#perIp.get(ip) ?? 0) >= this.options.maxConnectionsPerIp
    ) {
      why = `per-address connection limit ${this.options.maxConnectionsPerIp} reached for ${ip}`;
    } else if (this.#admit) why = this.#admit(conn.remoteAddress);

    if (why !== null && this.#refusing >= MAX_REFUSING) {
      // A burst of refusals must not use up the file descriptors held in reserve: beyond a
      // hundred waiting for their CONNACK 0x03, close at once.
      this.#noteRefusal(why, conn.remoteAddress);
      conn.close();
      return;
    }
    const client = new Client(this, conn);
    this.#perIp.set(ip, (this.#perIp.get(ip) ?? 0) + 1);
    this.clients.add(client);
    this.stats.connections = this.clients.size;
    if (why !== null) {
      this.#noteRefusal(why, conn.remoteAddress);
      this.#refusing++;
      client.refuse = 0x03;
    }
    client.run();
  }

  /** Clean-session clients whose will the cluster keeps for a survivor of this node. */
  #keptWills = new Set<Client>();
  #refusing = 0;
  #refusals = 0;
  #refusalLoggedAt = 0;

  /** One log line per second at most, with the count, however many connections are refused. */
  #noteRefusal(why: string, address: string): void {
    this.#refusals++;
    const now = Date.now();
    if (now - this.#refusalLoggedAt < 1000) return;
    this.#refusalLoggedAt = now;
    this.log.warn(`refusing ${address}: ${why} (${this.#refusals} refused so far)`);
  }

  // ------------------------------------------------------------------ durability

  /**
   * A promise that resolves when every store mutation made so far is durable, or null when no
   * mutation is pending (or the store is not durable), so acks can go out at once.
   */
  commitBarrier(): Promise<void> | null {
    if (!this.options.durable) return null;
    if (this.#dirty && !this.#flushScheduled) {
      this.#flushScheduled = true;
      // One flush per turn: every mutation made in this synchronous turn joins it.
      const p = RESOLVED.then(() => {
        this.#flushScheduled = false;
        this.#dirty = false;
        return this.store.flush();
      });
      this.#latestFlush = p;
      p.then(() => {
        if (this.#latestFlush === p) this.#latestFlush = null;
      }, (err) => {
        if (this.#latestFlush === p) this.#latestFlush = null;
        this.log.error(`store commit failed: ${err?.message ?? err}`);
      });
    }
    return this.#latestFlush;
  }

  #touch(): void {
    this.#dirty = true;
  }

  // ------------------------------------------------------------------ sessions

  assignClientId(): string {
    return `auto-${this.options.nodeId}-${Date.now().toString(36)}-${
      (++this.#idCounter).toString(36)
    }`;
  }

  isValidTopicName(topic: string): boolean {
    return isValidTopicName(topic, this.#limits);
  }

  /** Binds a connected client to its session (new, resumed or taken over). Returns session present. */
  attach(client: Client, p: ConnectPacket): boolean | Promise<boolean> {
    if (this.cluster) return this.#attachClustered(client, p);
    return this.#attach(client, p);
  }

  async #attachClustered(client: Client, p: ConnectPacket): Promise<boolean> {
    const id = client.info.clientId;
    const local = this.sessions.get(id);
    if (!local) {
      // Another node may hold the session: it releases it (closing its connection, publishing
      // the will) and its state is then read from the shared store.
      await this.cluster!.acquireSession(id);
      if (client.isClosed) return false;
      if (!this.sessions.has(id) && !p.clean) {
        const loaded = await this.store.loadSession(id);
        if (client.isClosed) return false;
        if (loaded && !this.sessions.has(id)) {
          const s = this.#restore(loaded);
          s.disconnectedAt = loaded.session.disconnectedAt ?? Date.now();
        }
      }
    }
    return this.#attach(client, p);
  }

  #attach(client: Client, p: ConnectPacket): boolean {
    const id = client.info.clientId;
    let session = this.sessions.get(id);
    if (session?.client) {
      const old = session.client;
      this.log.info(
        `client ${id} taken over by a new connection from ${client.info.remoteAddress}`,
      );
      old.close("session taken over");
      session = this.sessions.get(id);
    }
    const expiry = p.clean ? 0 : this.options.sessionExpiryInterval || EXPIRY_NEVER;
    let present = false;
    if (session && (p.clean || !session.persistent)) {
      this.#discard(session);
      session = undefined;
    }
    if (session) {
      present = true;
      session.expiryInterval = expiry;
      session.protocolVersion = client.version;
      // The rules may have changed while it was offline, and whoever resumes a session need not
      // be who made its subscriptions: it keeps only what this client may subscribe to.
      this.reauthorize(session, client.info);
    } else {
      session = new Session(id, expiry, client.version);
      this.sessions.set(id, session);
    }
    session.client = client;
    session.disconnectedAt = null;
    client.session = session;
    // The will is kept so that, in a cluster, the node adopting this session after a crash of
    // ours can publish it.
    if (session.persistent) this.#saveSession(session, p.will, client.info.username);
    else if (p.will && this.cluster?.keepWill) {
      this.#keptWills.add(client);
      this.cluster.keepWill(id, {
        will: p.will,
        username: client.info.username,
        protocolVersion: client.version,
      });
    }
    this.stats.sessions = this.sessions.size;
    this.events.clientConnected?.(client.info);
    return present;
  }

  /**
   * Drops the subscriptions of `s` that the authorizer no longer allows for `info` (after an ACL
   * reload, or when a session is resumed). Returns how many were dropped.
   */
  reauthorize(s: Session, info: ClientInfo): number {
    let dropped = 0;
    for (const filter of [...s.subscriptions.keys()]) {
      if (this.authorizer.canSubscribe(info, filter)) continue;
      s.deleteSubscription(filter);
      this.#subRemove(filter, s.clientId);
      if (s.persistent) {
        this.store.removeSubscription(s.clientId, filter);
        this.#touch();
      }
      this.events.unsubscribed?.(info, filter);
      this.log.info(`client ${s.clientId}: subscription ${filter} dropped: no longer authorized`);
      dropped++;
    }
    if (dropped > 0) this.stats.subscriptions = this.tree.size;
    // Queued messages it may no longer read go too; in-flight ones were already sent once and
    // finish their flow (a QoS 2 exchange cut in half would break exactly-once).
    if (s.queueLength > 0) {
      const gone = s.dropQueued((e) => this.authorizer.canSubscribe(info, e.message.topic));
      for (const e of gone) {
        if (s.persistent) this.store.removeOutbound(s.clientId, e.seq);
      }
      if (gone.length > 0) {
        if (s.persistent) this.#touch();
        this.log.info(
          `client ${s.clientId}: ${gone.length} queued message(s) dropped: no longer authorized`,
        );
      }
    }
    return dropped;
  }

  /** reauthorize() for every connected client; offline sessions are checked when resumed. */
  reauthorizeAll(): number {
    let dropped = 0;
    for (const c of this.clients) {
      if (c.session && c.state === "connected") dropped += this.reauthorize(c.session, c.info);
    }
    return dropped;
  }

  /** After CONNACK: resend what was in flight (DUP), then feed the queue. */
  resume(client: Client): void {
    const s = client.session!;
    for (const e of s.inflight.values()) {
      if (resend(client, e)) this.stats.messagesOut++;
    }
    this.pump(s);
  }

  /** Writes the session record (not its subscriptions or queue), owned by this node. */
  #saveSession(s: Session, will?: Will, username?: string): void {
    this.store.saveSession({
      clientId: s.clientId,
      expiryInterval: s.expiryInterval,
      disconnectedAt: s.disconnectedAt,
      protocolVersion: s.protocolVersion,
      node: this.options.nodeId,
      will,
      username: will ? username : undefined,
    });
    this.#touch();
  }

  #discard(s: Session): void {
    this.#volatile.settleSession(s, false);
    for (const filter of s.subscriptions.keys()) this.#subRemove(filter, s.clientId);
    this.sessions.delete(s.clientId);
    if (s.persistent) {
      this.store.deleteSession(s.clientId);
      this.#touch();
    }
    this.stats.sessions = this.sessions.size;
    this.stats.subscriptions = this.tree.size;
  }

  clientClosed(client: Client, reason: string, publishWill: boolean): void {
    this.clients.delete(client);
    if (client.refuse !== null) this.#refusing--;
    this.#congested.delete(client);
    this.stats.connections = this.clients.size;
    const ip = hostOf(client.conn.remoteAddress);
    const n = (this.#perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.#perIp.delete(ip);
    else this.#perIp.set(ip, n);
    const s = client.session;
    if (this.#keptWills.delete(client)) {
      // Gone cleanly or not, this node has dealt with the will (published or discarded).
      this.cluster!.keepWill!(client.info.clientId, null);
    }
    if (s && s.client === client) {
      s.client = null;
      // Offline now: its unacknowledged deliveries must be in the store (or, if the session
      // ends, simply stop holding up their publishers).
      this.#volatile.settleSession(s, s.persistent);
      if (s.persistent) {
        s.disconnectedAt = Date.now();
        this.#saveSession(s);
      } else {
        this.#discard(s);
      }
    }
    if (client.info.clientId && s) {
      this.log.info(`client ${client.info.clientId} disconnected: ${reason}`);
      this.events.clientDisconnected?.(client.info, reason);
    } else {
      this.log.debug(`connection from ${client.conn.remoteAddress} closed: ${reason}`);
    }
    if (publishWill && client.will) this.#publishWill(client.info, client.will);
  }

  #publishWill(info: ClientInfo, will: Will): void {
    if (!this.authorizer.canPublish(info, will.topic)) {
      this.log.info(`will of ${info.clientId} on ${will.topic} not authorized; dropped`);
      return;
    }
    const msg = this.#message(will.topic, will.payload, will.qos, will.retain, info.clientId);
    msg.properties = will.properties;
    this.log.debug(`publishing will of ${info.clientId} to ${will.topic}`);
    this.publish(msg, info);
  }

  #tick(): void {
    const now = Date.now();
    for (const s of this.sessions.values()) {
      // Deliveries still unacknowledged after a tick must not pin their socket chunks.
      if (s.inflight.size > 0) { for (const e of s.inflight.values()) compact(e.message); }
      // Session expiry.
      if (s.client || s.disconnectedAt === null || s.expiryInterval === EXPIRY_NEVER) continue;
      if (now - s.disconnectedAt >= s.expiryInterval * 1000) {
        this.log.info(`session ${s.clientId} expired`);
        this.#discard(s);
      }
    }
    // Slow consumers.
    const limit = this.options.slowConsumerTimeout * 1000;
    for (const c of this.#congested) {
      const since = c.congestedSince;
      if (since === 0) this.#congested.delete(c);
      else if (now - since >= limit) {
        this.log.warn(
          `client ${c.info.clientId} has not read ${c.buffered} bytes for ` +
            `${this.options.slowConsumerTimeout}s; disconnecting slow consumer`,
        );
        this.#congested.delete(c);
        c.close("slow consumer");
      }
    }
    // In-session retry (off by default, as the spec advises for 3.1.1).
    if (this.options.retryInterval > 0) {
      const retryMs = this.options.retryInterval * 1000;
      for (const c of this.clients) {
        const s = c.session;
        if (!s || c.state !== "connected" || s.inflight.size === 0) continue;
        for (const e of s.inflight.values()) {
          const sentAt = sentTimes.get(e) ?? 0;
          if (now - sentAt < retryMs) continue;
          sentTimes.set(e, now);
          resend(c, e);
        }
      }
    }
  }

  noteCongested(client: Client): void {
    this.#congested.add(client);
  }

  // ------------------------------------------------------------------ cluster host

  deliverFromPeer(msg: StoredMessage): void {
    this.route(msg);
  }

  async releaseSession(clientId: string): Promise<void> {
    const s = this.sessions.get(clientId);
    if (!s) return;
    if (s.client) {
      this.log.info(`client ${clientId} taken over by another node`);
      s.client.close("session taken over by another node");
    }
    const cur = this.sessions.get(clientId);
    if (cur) {
      this.#volatile.settleSession(cur, true);
      // Forget it here without deleting it from the shared store: the new owner resumes it.
      for (const filter of cur.subscriptions.keys()) this.#subRemove(filter, clientId);
      this.sessions.delete(clientId);
      this.stats.sessions = this.sessions.size;
    }
    await this.store.flush();
  }

  adoptSession(loaded: LoadedSession): void {
    if (this.sessions.has(loaded.session.clientId)) return;
    const wasConnected = loaded.session.disconnectedAt === null;
    const will = loaded.session.will;
    const s = this.#restore(loaded);
    this.#saveSession(s);
    if (wasConnected && will) {
      // Its node died with the connection open: an abnormal close, so the will is due.
      this.publishOrphanWill(s.clientId, {
        will,
        username: loaded.session.username,
        protocolVersion: s.protocolVersion,
      });
    }
  }

  /** A will whose connection went down with its node: authorized as the user it belonged to. */
  publishOrphanWill(clientId: string, kept: KeptWill): void {
    this.#publishWill({
      clientId,
      username: kept.username,
      remoteAddress: "cluster",
      transport: "cluster",
      protocolVersion: kept.protocolVersion,
    }, kept.will);
  }

  retainedFromPeer(topic: string, msg: StoredMessage | null): void {
    this.retained.set(topic, msg);
    this.stats.retained = this.retained.size;
  }

  localSessions(): string[] {
    return [...this.sessions.keys()];
  }

  localRoutes(): string[] {
    return this.tree.filters();
  }

  // ------------------------------------------------------------------ inbound

  #message(
    topic: string,
    payload: Uint8Array,
    qos: QoS,
    retain: boolean,
    origin: string,
  ): StoredMessage {
    return {
      id: `${this.#idPrefix}${(++this.#msgCounter).toString(36)}`,
      topic,
      payload,
      qos,
      retain,
      createdAt: Date.now(),
      origin,
    };
  }

  handlePublish(client: Client, p: PublishPacket): void {
    const s = client.session!;
    if (!isValidTopicName(p.topic, this.#limits)) {
      throw new ProtocolError(
        `invalid topic name ${JSON.stringify(p.topic.slice(0, 100))}`,
        "MQTT-3.3.2-2",
        ReasonCode.TopicNameInvalid,
      );
    }
    this.stats.messagesIn++;
    if (p.qos === 2 && s.inboundQos2.has(p.packetId!)) {
      // A resend before PUBREL: already routed once, only the PUBREC is repeated (exactly once).
      client.sendAck(0x50, p.packetId!, true);
      return;
    }
    let pending: void | Promise<void> = undefined;
    let msg: StoredMessage | undefined;
    if (this.authorizer.canPublish(client.info, p.topic)) {
      // The payload stays a view into the read buffer; `compact` copies it out only if the
      // message outlives this turn (retained, queued, in flight).
      msg = this.#message(p.topic, p.payload, p.qos, p.retain, client.info.clientId);
      if (p.dup) msg.dup = true;
      // Only a client's own PUBLISH has an ack that can wait for its deliveries to settle;
      // messages from peers, Kafka or wills rely on the store flush alone.
      if (p.qos === 1 && this.options.durable) VolatileDeliveries.markAckable(msg);
      pending = this.publish(msg, client.info);
      // Later deliveries of the same object (as a retained message) have no ack to hold.
      VolatileDeliveries.unmark(msg);
    } else {
      // MQTT 3.1.1: an unauthorized PUBLISH is acknowledged and dropped.
      this.log.info(`client ${client.info.clientId} not authorized to publish to ${p.topic}`);
    }
    if (p.qos === 0) return;
    const pid = p.packetId!;
    if (p.qos === 2) {
      s.addInboundQos2(pid);
      if (s.persistent) {
        this.store.addInboundQos2(s.clientId, pid);
        this.#touch();
      }
    }
    const first = p.qos === 1 ? 0x40 : 0x50;
    const ack = () => client.sendAck(first, pid, true);
    if (pending) {
      pending.then(() => msg ? this.#volatile.whenSettled(msg, ack) : ack(), (err) => {
        // One line per burst, not per message: a full bridge buffer refuses thousands.
        if (this.#unackedWarned++ % 1000 === 0) {
          this.log.warn(
            `message ${p.topic} from ${client.info.clientId} not acknowledged: ` +
              `${err?.message ?? err} (${this.#unackedWarned} so far)`,
          );
        }
        if (p.qos === 2) s.deleteInboundQos2(pid);
      });
    } else if (msg) this.#volatile.whenSettled(msg, ack);
    else ack();
  }

  /**
   * Routes a message accepted from a local client: retained store, local subscribers, sinks.
   * Returns a promise when a sink needs the publisher's ack to wait.
   */
  publish(msg: StoredMessage, from?: ClientInfo): void | Promise<void> {
    if (msg.retain) {
      if (msg.payload.byteLength === 0) {
        // MQTT-3.3.1-10/11: an empty retained payload deletes, and is not stored.
        if (this.retained.get(msg.topic)) {
          this.retained.set(msg.topic, null);
          this.store.setRetained(msg.topic, null);
          this.#touch();
        }
      } else {
        compact(msg);
        this.retained.set(msg.topic, msg);
        this.store.setRetained(msg.topic, msg);
        this.#touch();
      }
      this.stats.retained = this.retained.size;
      this.cluster?.retainedChanged(msg.topic, msg.payload.byteLength === 0 ? null : msg);
    }
    this.route(msg);
    let waits: Promise<void>[] | null = null;
    if (this.cluster) {
      const r = this.cluster.forward(msg);
      if (r) waits = [r];
    }
    if (!from || this.sinks.length === 0) {
      return waits ? waits[0] : undefined;
    }
    for (const sink of this.sinks) {
      const r = sink.accept(msg, from);
      if (r) (waits ??= []).push(r);
    }
    if (waits) return waits.length === 1 ? waits[0] : Promise.all(waits).then(() => {});
  }

  #matches = new Map<string, QoS>();
  /** topic -> matching (client id, max QoS) pairs, valid while the topic tree is unchanged. */
  #routeCache = new Map<string, RouteTarget[]>();
  #routeGeneration = -1;

  #targets(topic: string): RouteTarget[] {
    if (this.tree.generation !== this.#routeGeneration) {
      this.#routeCache.clear();
      this.#routeGeneration = this.tree.generation;
    }
    let targets = this.#routeCache.get(topic);
    if (targets) return targets;
    const matches = this.#matches;
    this.tree.match(topic, (owner, v) => {
      const prev = matches.get(owner);
      if (prev === undefined || v.qos > prev) matches.set(owner, v.qos);
    });
    targets = [];
    for (const [clientId, qos] of matches) targets.push({ clientId, qos });
    matches.clear();
    // Bounded: a stream of unique topics must not grow the cache without limit.
    if (this.#routeCache.size >= 10_000) this.#routeCache.clear();
    this.#routeCache.set(topic, targets);
    return targets;
  }

  /** Delivers to local subscribers: once per session, at the highest matching QoS. */
  route(msg: StoredMessage): void {
    const targets = this.#targets(msg.topic);
    const single = targets.length === 1;
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i];
      const s = this.sessions.get(t.clientId);
      if (!s) continue;
      this.deliver(s, msg, (msg.qos < t.qos ? msg.qos : t.qos) as QoS, false, single);
    }
  }

  /**
   * Sends or queues one message for one session. `single`: no other session receives this
   * message now, so its PUBLISH is written straight into the client's buffer, not shared.
   */
  deliver(s: Session, msg: StoredMessage, qos: QoS, retain: boolean, single = false): void {
    const c = s.client;
    if (qos === 0) {
      if (c && c.state === "connected" && !c.congested) {
        if (single) c.sendMessage(msg, 0, retain, 0);
        else c.sendPublish(publishTemplate(msg, c.version, 0, retain), 0, false);
        this.stats.messagesOut++;
      } else {
        // QoS 0 is not queued for offline sessions, and is shed first for slow readers.
        this.stats.dropped++;
      }
      return;
    }
    const entry: OutboundEntry = { seq: s.nextSeq++, message: msg, qos, retain, state: "queued" };
    if (
      c && c.state === "connected" && s.queueLength === 0 &&
      s.inflight.size < this.options.maxInflight && !c.congested
    ) {
      // Sent at once and normally acknowledged within milliseconds: the payload may stay a view
      // into the socket chunk; #tick compacts what is still in flight a second later.
      this.#sendEntry(s, c, entry, true, single);
      return;
    }
    compact(msg);
    if (
      s.queueLength >= this.options.maxQueuedMessages ||
      (this.options.maxQueuedBytes > 0 &&
        s.queuedBytes + msg.payload.byteLength > this.options.maxQueuedBytes)
    ) {
      if (this.options.queueFullPolicy === "drop-oldest" && s.queueLength > 0) {
        const old = s.dequeue()!;
        if (s.persistent) {
          this.store.removeOutbound(s.clientId, old.seq);
          this.#touch();
        }
      } else {
        this.#dropped(s);
        return;
      }
      this.#dropped(s);
    }
    s.enqueue(entry);
    if (s.persistent) {
      this.store.putOutbound(s.clientId, entry);
      this.#touch();
    }
  }

  #dropped(s: Session): void {
    this.stats.dropped++;
    if (s.dropped++ % 1000 === 0) {
      this.log.warn(
        `queue of ${s.clientId} is full (${s.queueLength} messages, ${s.queuedBytes} bytes); ` +
          `dropping messages (policy ${this.options.queueFullPolicy}, ${s.dropped} so far)`,
      );
    }
  }

  #sendEntry(s: Session, c: Client, entry: OutboundEntry, fresh = false, single = false): void {
    const pid = s.allocatePacketId();
    entry.packetId = pid;
    entry.state = "sent";
    s.setInflight(pid, entry);
    if (this.options.retryInterval > 0) sentTimes.set(entry, Date.now());
    let durable = false;
    if (s.persistent) {
      if (fresh && entry.qos === 1 && VolatileDeliveries.isAckable(entry.message)) {
        this.#volatile.hold(s, entry);
      } else {
        this.store.putOutbound(s.clientId, entry);
        this.#touch();
        // Exactly once across a crash: a QoS 2 delivery leaves only once its packet id is durable.
        durable = entry.qos === 2;
      }
    }
    if (single) c.sendMessage(entry.message, entry.qos, entry.retain, pid, durable);
    else {
      c.sendPublish(
        publishTemplate(entry.message, c.version, entry.qos, entry.retain),
        pid,
        false,
        durable,
      );
    }
    this.stats.messagesOut++;
  }

  /** Moves queued messages into the in-flight window while the client keeps up. */
  pump(s: Session): void {
    const c = s.client;
    if (!c || c.state !== "connected") return;
    while (s.queueLength > 0 && s.inflight.size < this.options.maxInflight && !c.congested) {
      this.#sendEntry(s, c, s.dequeue()!);
    }
  }

  handlePuback(client: Client, pid: number): void {
    const s = client.session!;
    const e = s.inflight.get(pid);
    if (!e || e.qos !== 1) {
      this.log.debug(`client ${s.clientId}: PUBACK for unknown packet id ${pid}`);
      return;
    }
    this.#complete(s, e);
  }

  handlePubrec(client: Client, pid: number): void {
    const s = client.session!;
    const e = s.inflight.get(pid);
    if (e && e.qos === 2 && e.state === "sent") {
      e.state = "released";
      if (s.persistent) {
        this.store.putOutbound(s.clientId, e);
        this.#touch();
      }
    } else if (!e) {
      this.log.debug(`client ${s.clientId}: PUBREC for unknown packet id ${pid}`);
    }
    // MQTT-4.3.3-3: answer with PUBREL (flags 0x2), also for a repeated PUBREC. For a persistent
    // session it leaves only once "released" is durable: a subscriber that saw PUBREL may forget
    // the id, so a crash must not make us resend the PUBLISH under it.
    client.sendAck(0x62, pid, s.persistent);
  }

  handlePubcomp(client: Client, pid: number): void {
    const s = client.session!;
    const e = s.inflight.get(pid);
    if (!e || e.qos !== 2) {
      this.log.debug(`client ${s.clientId}: PUBCOMP for unknown packet id ${pid}`);
      return;
    }
    this.#complete(s, e);
  }

  #complete(s: Session, e: OutboundEntry): void {
    s.deleteInflight(e.packetId!);
    sentTimes.delete(e);
    // A volatile delivery acknowledged in time was never written: nothing to remove.
    if (!this.#volatile.acknowledged(e) && s.persistent) {
      this.store.removeOutbound(s.clientId, e.seq);
      this.#touch();
    }
    this.pump(s);
  }

  handlePubrel(client: Client, pid: number): void {
    const s = client.session!;
    if (s.deleteInboundQos2(pid) && s.persistent) {
      this.store.removeInboundQos2(s.clientId, pid);
      this.#touch();
    }
    // PUBCOMP waits for the commit: the client may reuse the id right after it.
    client.sendAck(0x70, pid, true);
  }

  handleSubscribe(client: Client, p: SubscribePacket): void {
    const s = client.session!;
    const codes: number[] = [];
    const granted: { filter: string; qos: QoS }[] = [];
    let announcing: Promise<void>[] | null = null;
    for (const sub of p.subscriptions) {
      const filter = sub.topic;
      let code: number = SUBACK_FAILURE;
      if (!isValidFilter(filter, this.#limits)) {
        this.log.info(`client ${s.clientId}: invalid topic filter ${JSON.stringify(filter)}`);
      } else if (!this.authorizer.canSubscribe(client.info, filter)) {
        this.log.info(`client ${s.clientId} not authorized to subscribe to ${filter}`);
      } else if (
        this.options.maxSubscriptionsPerClient > 0 && !s.subscriptions.has(filter) &&
        s.subscriptions.size >= this.options.maxSubscriptionsPerClient
      ) {
        this.log.info(`client ${s.clientId}: subscription limit reached`);
      } else {
        const qos = sub.qos;
        const rec = { filter, qos };
        s.setSubscription(rec);
        const announced = this.#subAdd(filter, s.clientId, qos);
        if (announced) {
          (announcing ??= []).push(announced.catch((err) => {
            // The route is re-announced when the cluster link recovers; the SUBACK still goes.
            this.log.warn(`announcing route ${filter} failed: ${err?.message ?? err}`);
          }));
        }
        if (s.persistent) {
          this.store.addSubscription(s.clientId, rec);
          this.#touch();
        }
        granted.push({ filter, qos });
        this.events.subscribed?.(client.info, filter, qos);
        code = qos;
      }
      codes.push(code);
    }
    this.stats.subscriptions = this.tree.size;
    const suback = encode(
      { type: "suback", packetId: p.packetId, reasonCodes: codes },
      client.version,
    );
    if (announcing) {
      // In a cluster the SUBACK waits until every node routes the new filter here, so a message
      // published anywhere right after it is not missed; later output queues behind it.
      const commit = this.commitBarrier();
      if (commit) announcing.push(commit);
      client.sendAfter(Promise.all(announcing).then(() => {}), suback);
    } else client.send(suback, true);
    // MQTT-3.3.1-6 / -8: retained messages follow the SUBACK, RETAIN=1, at min(QoS), also when
    // an existing subscription is replaced.
    for (const g of granted) {
      for (const m of this.retained.match(g.filter)) {
        if (!this.authorizer.canSubscribe(client.info, m.topic)) continue;
        this.deliver(s, m, (m.qos < g.qos ? m.qos : g.qos) as QoS, true);
      }
    }
  }

  handleUnsubscribe(client: Client, p: UnsubscribePacket): void {
    const s = client.session!;
    for (const filter of p.topics) {
      if (s.deleteSubscription(filter)) {
        this.#subRemove(filter, s.clientId);
        if (s.persistent) {
          this.store.removeSubscription(s.clientId, filter);
          this.#touch();
        }
        this.events.unsubscribed?.(client.info, filter);
      }
    }
    this.stats.subscriptions = this.tree.size;
    client.send(encode({ type: "unsuback", packetId: p.packetId }, client.version), true);
  }
}

/**
 * Copies a payload out of a larger read buffer, so a message that is kept (retained, queued, in
 * flight) does not pin a whole socket chunk. Messages that are only passed through are not copied.
 */
function compact(msg: StoredMessage): void {
  const p = msg.payload;
  if (p.buffer.byteLength > p.byteLength * 2 + 256) msg.payload = p.slice();
}

/**
 * Sends an in-flight delivery again: PUBREL once released, else the PUBLISH with DUP set.
 * Returns whether it was a PUBLISH.
 */
function resend(c: Client, e: OutboundEntry): boolean {
  if (e.state === "released") {
    c.sendAck(0x62, e.packetId!);
    return false;
  }
  c.sendPublish(publishTemplate(e.message, c.version, e.qos, e.retain), e.packetId!, true);
  return true;
}

/** When each in-flight delivery was last sent (only tracked when retry is on). */
const sentTimes = new WeakMap<OutboundEntry, number>();

function hostOf(address: string): string {
  const i = address.lastIndexOf(":");
  return i > 0 ? address.slice(0, i) : address;
}
