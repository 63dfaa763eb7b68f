/**
 * What an operator may ask of this node's core and do to it (the admin REST API, the original
 * HTTP API and the cluster's admin requests go through here): list clients, sessions,
 * subscriptions and retained messages; disconnect a client; end a session; publish a message
 * through the same path as a client's PUBLISH. Answers are plain records, for this node only
 * (the cluster side gathers them from every node).
 */
import type { Properties, QoS } from "../codec/packets.ts";
import { ReasonCode } from "../codec/reason_codes.ts";
import type { Client } from "./client.ts";
import type { Core } from "./core.ts";
import { compact, messageProperties } from "./messages.ts";
import type { ClientInfo, StoredMessage } from "./model.ts";
import { isSysTopic } from "./sys_topic.ts";
import { isValidTopicName } from "./topic.ts";

/** One connected client, as listed. */
export interface ClientSummary {
  clientId: string;
  username: string | null;
  address: string;
  listener: string;
  protocolVersion: number;
  node: string;
  keepalive: number;
  /** ms since epoch when the connection was opened. */
  connectedAt: number;
  subscriptions: number;
  inflight: number;
  queued: number;
}

/** One subscription of a session. */
export interface SubscriptionView {
  filter: string;
  qos: number;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: number;
  identifier: number | null;
}

/** One client with its subscriptions. */
export interface ClientDetails extends Omit<ClientSummary, "subscriptions"> {
  subscriptions: SubscriptionView[];
}

/** One session held by a node, connected or offline. */
export interface SessionSummary {
  clientId: string;
  connected: boolean;
  node: string;
  subscriptions: number;
  queued: number;
  expiryInterval: number;
  /** The subscriptions (for /subscriptions and the original API's /info). */
  filters: { filter: string; qos: number }[];
}

/** A message to publish on an operator's behalf. */
export interface AdminPublish {
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  dup?: boolean;
  /** MQTT 5 message properties; only the ones that belong to a message are kept. */
  properties?: Properties;
  /** Who publishes: the ACL is asked about this identity; sinks see it as the origin. */
  by: { username?: string; remoteAddress: string };
}

/** Why a publish was refused: the HTTP side answers 4xx with `message`. */
export class AdminRefusal extends Error {
  override name = "AdminRefusal";
  constructor(message: string, readonly status: number = 400) {
    super(message);
  }
}

/** The client id a publish made through the HTTP API carries as its origin. */
export const HTTP_ORIGIN = "$http";

/** The admin surface of one node's core. */
export class BrokerAdmin {
  readonly #core: Core;

  constructor(core: Core) {
    this.#core = core;
  }

  get nodeId(): string {
    return this.#core.options.nodeId;
  }

  /** Connected clients of this node. */
  clients(): ClientSummary[] {
    const out: ClientSummary[] = [];
    for (const c of this.#core.clients) {
      if (c.state !== "connected" || !c.session) continue;
      out.push(this.#summary(c));
    }
    return out;
  }

  /** One connected client of this node with its subscriptions, or null. */
  client(clientId: string): ClientDetails | null {
    const c = this.#connected(clientId);
    if (!c) return null;
    const subs = [...c.session!.subscriptions.values()].map((s) => ({
      filter: s.filter,
      qos: s.qos,
      noLocal: s.noLocal ?? false,
      retainAsPublished: s.retainAsPublished ?? false,
      retainHandling: s.retainHandling ?? 0,
      identifier: s.subscriptionId ?? null,
    }));
    return { ...this.#summary(c), subscriptions: subs };
  }

  /**
   * Disconnects a client of this node (5.0: DISCONNECT 0x98 Administrative action first); its
   * will is published as for any server-side close. False when it is not connected here.
   */
  kick(clientId: string): boolean {
    const c = this.#connected(clientId);
    if (!c) return false;
    c.close("disconnected by an administrator", true, ReasonCode.AdministrativeAction);
    return true;
  }

  /** Sessions this node holds, connected or offline. */
  sessions(): SessionSummary[] {
    const node = this.nodeId;
    const out: SessionSummary[] = [];
    for (const s of this.#core.sessions.map.values()) {
      out.push({
        clientId: s.clientId,
        connected: s.client !== null && s.client.state === "connected",
        node,
        subscriptions: s.subscriptions.size,
        queued: s.queueLength,
        expiryInterval: s.expiryInterval,
        filters: [...s.subscriptions.values()].map((r) => ({ filter: r.filter, qos: r.qos })),
      });
    }
    return out;
  }

  /**
   * Ends a session held here: its client (if connected) is disconnected first, then its
   * subscriptions, queue and stored state go. False when this node does not hold it.
   */
  deleteSession(clientId: string): boolean {
    const core = this.#core;
    const s = core.sessions.map.get(clientId);
    if (!s) return false;
    const c = s.client as Client | null;
    if (c && c.state !== "closed") {
      c.close("session deleted by an administrator", true, ReasonCode.AdministrativeAction);
    }
    // A clean session ended with its connection already; a persistent one stays offline.
    const left = core.sessions.map.get(clientId);
    if (left) core.sessions.discard(left);
    return true;
  }

  /** Retained messages matching `filter` (all with "#"), by topic. */
  retained(filter = "#"): StoredMessage[] {
    const now = Date.now();
    return this.#core.retained.match(filter).filter((m) =>
      m.expiresAt === undefined || m.expiresAt > now
    ).sort((a, b) => a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0);
  }

  /** The retained message of `topic`, or null. */
  retainedOf(topic: string): StoredMessage | null {
    const m = this.#core.retained.get(topic);
    if (!m || (m.expiresAt !== undefined && m.expiresAt <= Date.now())) return null;
    return m;
  }

  /**
   * Deletes the retained message of `topic` (on every node, through the cluster link) and
   * resolves once that is durable. False when there was none.
   */
  async deleteRetained(topic: string): Promise<boolean> {
    const core = this.#core;
    if (!core.retained.get(topic)) return false;
    const msg = core.messages.create(topic, new Uint8Array(0), 0, true, HTTP_ORIGIN);
    core.retainer.apply(msg);
    await core.persistence.commitBarrier();
    return true;
  }

  /**
   * Publishes as a client's PUBLISH would be: the topic checked, $SYS refused, the ACL asked,
   * retained, routed here and to the other nodes, seen by the sinks; resolves once it is as safe
   * as a PUBACK would say (store commit, cluster queueing, at-least-once sinks). Throws
   * AdminRefusal for a message a client could not publish.
   */
  async publish(p: AdminPublish): Promise<void> {
    const core = this.#core;
    if (!isValidTopicName(p.topic, core.limits)) {
      throw new AdminRefusal(
        "invalid topic name: it must be non-empty and contain no wildcards (+, #) or NUL " +
          `and stay within ${core.limits.maxLevels} levels and ${core.limits.maxLength} bytes`,
      );
    }
    if (isSysTopic(p.topic)) {
      throw new AdminRefusal("$SYS topics are reserved for the broker", 403);
    }
    if (p.qos > core.options.maxQos) {
      throw new AdminRefusal(`QoS ${p.qos} is above the maximum QoS ${core.options.maxQos}`);
    }
    if (p.retain && !core.options.retainAvailable) {
      throw new AdminRefusal("retained messages are turned off on this broker");
    }
    const info: ClientInfo = {
      clientId: HTTP_ORIGIN,
      username: p.by.username,
      remoteAddress: p.by.remoteAddress,
      transport: "http",
      protocolVersion: 5,
    };
    if (!core.authorizer.canPublish(info, p.topic)) {
      throw new AdminRefusal(`not authorized to publish to ${p.topic}`, 403);
    }
    core.stats.messagesIn++;
    const msg = core.messages.create(
      p.topic,
      p.payload,
      p.qos,
      p.retain,
      HTTP_ORIGIN,
      messageProperties(p.properties),
    );
    if (p.dup) msg.dup = true;
    compact(msg);
    const pending = core.publisher.publish(msg, info);
    const barrier = core.persistence.commitBarrier();
    try {
      if (pending) await pending;
      if (barrier) await barrier;
    } catch (err) {
      // Not acknowledged, as a client's PUBACK would not be: the caller may retry.
      throw new AdminRefusal(`not accepted: ${(err as Error)?.message ?? err}`, 503);
    }
  }

  #connected(clientId: string): Client | null {
    const s = this.#core.sessions.map.get(clientId);
    const c = s?.client as Client | null | undefined;
    return c && c.state === "connected" ? c : null;
  }

  #summary(c: Client): ClientSummary {
    const s = c.session!;
    return {
      clientId: c.info.clientId,
      username: c.info.username ?? null,
      address: c.info.remoteAddress,
      listener: c.info.transport,
      protocolVersion: c.version,
      node: this.nodeId,
      keepalive: c.keepalive,
      connectedAt: c.connectedAt,
      subscriptions: s.subscriptions.size,
      inflight: s.inflight.size,
      queued: s.queueLength,
    };
  }
}
