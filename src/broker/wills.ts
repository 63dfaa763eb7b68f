/**
 * Wills: published when a connection ends without DISCONNECT (authorized as the client that set
 * them), with their 5.0 properties; held for their Will Delay Interval (delayed_wills.ts); and,
 * in a cluster, kept where a surviving node can publish them if this node dies.
 */
import type { Will } from "../codec/packets.ts";
import type { Logger } from "../log.ts";
import { DelayedWills } from "./delayed_wills.ts";
import { type MessageFactory, messageProperties } from "./messages.ts";
import type { ClientInfo } from "./model.ts";
import type { Persistence } from "./persistence.ts";
import type { Authorizer } from "./ports/auth.ts";
import type { ClusterLink, KeptWill } from "./ports/cluster.ts";
import type { Publisher } from "./publisher.ts";
import { isSysTopic } from "./sys_topic.ts";

export class Wills {
  readonly #authorizer: Authorizer;
  readonly #publisher: Publisher;
  readonly #messages: MessageFactory;
  readonly #log: Logger;
  readonly #cluster: ClusterLink | undefined;
  /** 5.0 wills waiting for their Will Delay Interval. */
  readonly delayed: DelayedWills;
  /** Connections of clean-session clients whose will the cluster keeps for a survivor. */
  readonly #kept = new Set<object>();

  constructor(
    authorizer: Authorizer,
    publisher: Publisher,
    messages: MessageFactory,
    log: Logger,
    cluster: ClusterLink | undefined,
    persistence: Persistence,
  ) {
    this.#authorizer = authorizer;
    this.#publisher = publisher;
    this.#messages = messages;
    this.#log = log;
    this.#cluster = cluster;
    this.delayed = new DelayedWills(persistence, (info, will) => this.publish(info, will));
  }

  /** Publishes `will` on behalf of `info`, if `info` may publish to its topic. */
  publish(info: ClientInfo, will: Will): void {
    // $SYS belongs to the broker: a will cannot write there any more than a PUBLISH can.
    if (isSysTopic(will.topic) || !this.#authorizer.canPublish(info, will.topic)) {
      this.#log.info(`will of ${info.clientId} on ${will.topic} not authorized; dropped`);
      return;
    }
    // Its expiry, if any, counts from now: the will is published now (3.1.3.2).
    const msg = this.#messages.create(
      will.topic,
      will.payload,
      will.qos,
      will.retain,
      info.clientId,
      messageProperties(will.properties),
    );
    this.#log.debug(`publishing will of ${info.clientId} to ${will.topic}`);
    this.#publisher.publish(msg, info);
  }

  /** A will whose connection went down with its node: authorized as the user it belonged to. */
  publishOrphan(clientId: string, kept: KeptWill): void {
    this.publish({
      clientId,
      username: kept.username,
      remoteAddress: "cluster",
      transport: "cluster",
      protocolVersion: kept.protocolVersion,
    }, kept.will);
  }

  /**
   * A clean-session client with a will connected here (`connection` identifies it): in a
   * cluster its will is kept for the node that would take over if this one died. (Persistent
   * sessions keep theirs in their session record.)
   */
  keep(connection: object, info: ClientInfo, will: Will): void {
    if (!this.#cluster?.keepWill) return;
    this.#kept.add(connection);
    this.#cluster.keepWill(info.clientId, {
      will,
      username: info.username,
      protocolVersion: info.protocolVersion,
    });
  }

  /** The connection is gone and this node has dealt with its will (published or discarded). */
  release(connection: object, clientId: string): void {
    if (this.#kept.delete(connection)) this.#cluster!.keepWill!(clientId, null);
  }
}
