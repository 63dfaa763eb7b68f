/**
 * The broker's parts wired together: what every packet handler is given. It holds no behaviour
 * of its own; each part lives in the file named after its job.
 */
import type { Logger } from "../log.ts";
import { Admission } from "./admission.ts";
import type { Client } from "./client.ts";
import { BacklogLoader } from "./backlog.ts";
import { Delivery } from "./delivery.ts";
import { MessageFactory } from "./messages.ts";
import type { BrokerOptions, SystemInfo } from "./options.ts";
import { Persistence } from "./persistence.ts";
import {
  allowAll,
  type Authenticator,
  type Authorizer,
  type EnhancedAuthenticator,
} from "./ports/auth.ts";
import type { ClusterLink } from "./ports/cluster.ts";
import type { BrokerEvents } from "./ports/events.ts";
import type { MessageSink } from "./ports/sink.ts";
import type { Store } from "./ports/store.ts";
import { Publisher } from "./publisher.ts";
import { Retainer } from "./retain.ts";
import { RetainedIndex } from "./retained.ts";
import { Router } from "./router.ts";
import type { QueueBudget, Session } from "./session.ts";
import { Sessions } from "./sessions.ts";
import { SharedDelivery } from "./shared_delivery.ts";
import { type BrokerStats, newStats } from "./stats.ts";
import { SubscriptionTable } from "./subscriptions.ts";
import type { TopicLimits } from "./topic.ts";
import { VolatileDeliveries } from "./volatile.ts";
import { Wills } from "./wills.ts";

export interface BrokerDeps {
  options: BrokerOptions;
  store: Store;
  log: Logger;
  authenticator?: Authenticator;
  authorizer?: Authorizer;
  /** MQTT 5.0 enhanced authentication (AUTH); without it a CONNECT naming a method gets 0x8C. */
  enhancedAuthenticator?: EnhancedAuthenticator;
  sinks?: MessageSink[];
  events?: BrokerEvents;
  /**
   * Admission control before any byte is read (rate limits, bans): returns a reason to refuse
   * the connection, or null to admit it.
   */
  admit?: (remoteAddress: string) => string | null;
  /** Present when clustering is on; the store is then shared by all nodes. */
  cluster?: ClusterLink;
  /** The version and heap figures `$SYS` publishes (version "dev" when not given). */
  system?: SystemInfo;
}

export class Core {
  readonly options: BrokerOptions;
  readonly log: Logger;
  readonly authenticator: Authenticator;
  readonly authorizer: Authorizer;
  readonly enhancedAuthenticator: EnhancedAuthenticator | undefined;
  readonly events: BrokerEvents;
  readonly cluster: ClusterLink | undefined;
  readonly limits: TopicLimits;
  readonly stats: BrokerStats = newStats();
  /** Bytes queued across every session (see BrokerOptions.maxQueuedBytesTotal). */
  readonly queueBudget: QueueBudget = { bytes: 0 };

  /** Every open connection, connected or not yet. */
  readonly clients = new Set<Client>();
  /** Connections over their outbound limit, watched for the slow-consumer timeout. */
  readonly congested = new Set<Client>();
  closing = false;

  readonly admission: Admission;
  readonly persistence: Persistence;
  readonly subscriptions: SubscriptionTable;
  readonly retained = new RetainedIndex();
  readonly retainer: Retainer;
  /** QoS 1 deliveries to online persistent sessions not written yet (see volatile.ts). */
  readonly volatile: VolatileDeliveries;
  readonly delivery: Delivery;
  readonly messages: MessageFactory;
  readonly router: Router;
  readonly publisher: Publisher;
  /** Messages of shared subscriptions (one receiver per group, across the cluster). */
  readonly shared: SharedDelivery;
  readonly wills: Wills;
  readonly sessions: Sessions;
  /** Loads the rest of large restored queues page by page. */
  readonly backlog: BacklogLoader;

  constructor(deps: BrokerDeps) {
    const options = this.options = deps.options;
    const log = this.log = deps.log;
    this.authenticator = deps.authenticator ?? allowAll;
    const authorizer = this.authorizer = deps.authorizer ?? allowAll;
    this.enhancedAuthenticator = deps.enhancedAuthenticator;
    const events = this.events = deps.events ?? {};
    const cluster = this.cluster = deps.cluster;
    this.limits = { maxLevels: options.maxTopicLevels, maxLength: options.maxTopicLength };

    this.admission = new Admission(options, log, deps.admit);
    const persistence = this.persistence = new Persistence(
      deps.store,
      options.nodeId,
      options.durable,
      log,
    );
    const subscriptions = this.subscriptions = new SubscriptionTable(cluster);
    this.retainer = new Retainer(this.retained, persistence, this.stats, cluster, options, log);
    const volatile = this.volatile = new VolatileDeliveries((s, e) =>
      persistence.putOutbound(s, e)
    );
    const delivery = this.delivery = new Delivery(
      options,
      this.stats,
      persistence,
      volatile,
      log,
      this.queueBudget,
    );
    this.messages = new MessageFactory(options.nodeId);
    const sessionMap = new Map();
    // An offline session's queue is checked when a client resumes it (Sessions.reauthorize).
    const readable = (s: Session, topic: string) =>
      s.client === null || authorizer.canSubscribe(s.client.info, topic);
    this.router = new Router(subscriptions, sessionMap, delivery, readable);
    const shared = this.shared = new SharedDelivery(
      subscriptions.shared,
      sessionMap,
      delivery,
      persistence,
      cluster,
      options.sharedSubscriptionStrategy,
      log,
      readable,
    );
    this.publisher = new Publisher(this.retainer, this.router, cluster, deps.sinks ?? [], shared);
    const wills = this.wills = new Wills(
      authorizer,
      this.publisher,
      this.messages,
      log,
      cluster,
      persistence,
    );
    const backlog = this.backlog = new BacklogLoader({
      log,
      pump: (s) => delivery.pump(s),
      current: (s) => sessionMap.get(s.clientId) === s,
      // Pages read after the resume pass the check reauthorize() made of the rest of the queue.
      readable: (s, e) => {
        const c = s.client;
        if (c === null || authorizer.canSubscribe(c.info, e.message.topic)) return true;
        persistence.removeOutbound(s, e.seq);
        return false;
      },
    });
    this.sessions = new Sessions({
      options,
      log,
      stats: this.stats,
      persistence,
      subscriptions,
      volatile,
      authorizer,
      events,
      wills,
      cluster,
      shared,
      queueBudget: this.queueBudget,
      backlog,
    }, sessionMap);
  }
}
