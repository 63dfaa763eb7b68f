/**
 * The broker: the one object the rest of MqttWk talks to. It opens the store and restores state,
 * admits connections and serves them through the packet handlers (handlers/), and closes down.
 * The work itself is done by the parts wired in core.ts. It imports no Deno API; transports hand
 * it ByteConnections, tests drive it over in-memory streams.
 */
import type { ConnectPacket, Packet } from "../codec/packets.ts";
import { ReasonCode } from "../codec/reason_codes.ts";
import type { Logger } from "../log.ts";
import { BrokerAdmin } from "./admin.ts";
import { Client, type ClientHost } from "./client.ts";
import { FixedDelay, KeepaliveWheel } from "./client_timers.ts";
import { CoreClusterHost } from "./cluster_host.ts";
import { connectionClosed } from "./connection_closed.ts";
import { restoredInfo } from "./delayed_wills.ts";
import { type BrokerDeps, Core } from "./core.ts";
import { dispatch, handleConnect } from "./handlers/mod.ts";
import { tick } from "./maintenance.ts";
import type { StoredMessage } from "./model.ts";
import type { BrokerOptions } from "./options.ts";
import type { ClientOutput } from "./output.ts";
import type { ByteConnection } from "./ports/connection.ts";
import type { RetainedIndex } from "./retained.ts";
import type { Session } from "./session.ts";
import type { BrokerStats } from "./stats.ts";
import { SysPublisher } from "./sys_publisher.ts";
import { isValidTopicName } from "./topic.ts";

export type { BrokerDeps } from "./core.ts";
export type { BrokerStats } from "./stats.ts";

export class Broker {
  readonly #core: Core;
  readonly #host: ClientHost;
  readonly #sys: SysPublisher;
  /** What an operator may ask of and do to this node (admin API, original HTTP API). */
  readonly admin: BrokerAdmin;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(deps: BrokerDeps) {
    const core = this.#core = new Core(deps);
    this.#sys = new SysPublisher(core, deps.system ?? { version: "dev" });
    this.admin = new BrokerAdmin(core);
    const persistence = core.persistence;
    // One host object for every client: per-connection closures would cost memory per idle
    // connection.
    this.#host = {
      options: core.options,
      log: core.log,
      stats: core.stats,
      commitBarrier: () => persistence.commitBarrier(),
      connect: (c: Client, p: ConnectPacket) => handleConnect(core, c, p),
      packet: (c: Client, p: Packet) => dispatch(core, c, p),
      closed: (c: Client, reason: string, will: boolean) => connectionClosed(core, c, reason, will),
      awaitingConnect: new FixedDelay(core.options.connectTimeout * 1000, Client.connectExpired),
      awaitingRefusal: new FixedDelay(
        Math.min(2, core.options.connectTimeout) * 1000,
        Client.connectExpired,
      ),
      keepalive: new KeepaliveWheel(Client.keepaliveDue),
      congested: (c: ClientOutput) => void core.congested.add(c as Client),
      drained: (c: ClientOutput) => {
        const s = (c as Client).session;
        if (s) core.delivery.pump(s);
      },
    };
  }

  get options(): BrokerOptions {
    return this.#core.options;
  }

  get log(): Logger {
    return this.#core.log;
  }

  get nodeId(): string {
    return this.#core.options.nodeId;
  }

  get stats(): BrokerStats {
    return this.#core.stats;
  }

  /** Sessions held on this node, connected or offline, by client id. */
  get sessions(): ReadonlyMap<string, Session> {
    return this.#core.sessions.map;
  }

  /** Retained messages by topic. */
  get retained(): RetainedIndex {
    return this.#core.retained;
  }

  /** Opens the store and restores persistent sessions and retained messages. */
  async start(): Promise<void> {
    const core = this.#core;
    const store = core.persistence.store;
    await store.open();
    // In a cluster the store is shared: sessions are loaded when their client connects here.
    // Loaded before the expired ones go: a session that expired while the broker was down ends
    // now, and a will it had waiting is then due (MQTT-3.1.3-9).
    const all = core.cluster ? [] : await store.loadSessions();
    const expired = await store.deleteExpiredSessions(Date.now());
    if (expired.length) core.log.info(`removed ${expired.length} expired sessions`);
    core.stats.sessionsExpired += expired.length;
    const now = Date.now();
    for (const m of await store.loadRetained()) core.retainer.restore(m, now);
    const gone = new Set(expired);
    const loaded = gone.size === 0 ? all : all.filter((l) => !gone.has(l.session.clientId));
    for (const l of loaded) core.sessions.restore(l);
    for (const l of all) {
      const r = l.session;
      if (!gone.has(r.clientId) || r.will === undefined || r.willDueAt === undefined) continue;
      core.wills.publish(restoredInfo(r.clientId, r.username, r.protocolVersion, "store"), r.will);
    }
    core.stats.sessions = core.sessions.map.size;
    core.stats.subscriptions = core.subscriptions.size;
    core.stats.retained = core.retained.size;
    if (loaded.length || core.retained.size) {
      core.log.info(
        `restored ${loaded.length} sessions and ${core.retained.size} retained messages`,
      );
    }
    this.#timer = setInterval(() => tick(core), 1000);
    if (core.cluster) await core.cluster.start(new CoreClusterHost(core));
    this.#sys.start();
  }

  /** Stops serving: closes every connection (letting queued output drain briefly), then the store. */
  async close(): Promise<void> {
    const core = this.#core;
    if (core.closing) return;
    core.closing = true;
    clearInterval(this.#timer);
    this.#sys.stop();
    const waits: Promise<void>[] = [];
    for (const c of core.clients) {
      waits.push(
        new Promise<void>((resolve) => {
          const poll = () => c.state === "closed" ? resolve() : setTimeout(poll, 10);
          poll();
        }),
      );
      // A 5.0 client is told why (DISCONNECT 0x8B) after its queued output.
      c.endWith(ReasonCode.ServerShuttingDown, "server shutting down");
    }
    await Promise.race([Promise.all(waits), new Promise((r) => setTimeout(r, 3000))]);
    for (const c of core.clients) c.close("server shutting down", false);
    const host = this.#host;
    host.awaitingConnect.stop();
    host.awaitingRefusal.stop();
    host.keepalive.stop();
    core.volatile.stop();
    if (core.cluster) {
      await core.cluster.stop().catch((err) =>
        core.log.warn(`cluster stop failed: ${err?.message ?? err}`)
      );
    }
    try {
      await core.persistence.store.flush();
    } finally {
      await core.persistence.store.close();
    }
  }

  /** Serves one connection until it ends. */
  handleConnection(conn: ByteConnection): void {
    const core = this.#core;
    const why = core.admission.check(conn.remoteAddress, core.clients.size, core.closing);
    if (why !== null && !core.admission.refused(why, conn.remoteAddress)) {
      conn.close();
      return;
    }
    const client = new Client(this.#host, conn);
    core.admission.opened(conn.remoteAddress);
    core.clients.add(client);
    const stats = core.stats;
    stats.socketsOpened++;
    stats.connections = core.clients.size;
    if (stats.connections > stats.connectionsMax) stats.connectionsMax = stats.connections;
    if (why !== null) client.refuse = 0x03;
    client.run();
  }

  /**
   * Routes a message that entered this node other than from a client's PUBLISH (the Kafka
   * ingress): see Publisher.publish.
   */
  publish(msg: StoredMessage): void | Promise<void> {
    return this.#core.publisher.publish(msg);
  }

  /** See Persistence.commitBarrier. */
  commitBarrier(): Promise<void> | null {
    return this.#core.persistence.commitBarrier();
  }

  isValidTopicName(topic: string): boolean {
    return isValidTopicName(topic, this.#core.limits);
  }

  /**
   * Holds every connected client's subscriptions to the current ACL (after a reload); offline
   * sessions are checked when resumed. Returns how many subscriptions were dropped.
   */
  reauthorizeAll(): number {
    const core = this.#core;
    let dropped = 0;
    for (const c of core.clients) {
      if (c.session && c.state === "connected") {
        dropped += core.sessions.reauthorize(c.session, c.info);
      }
    }
    return dropped;
  }
}
