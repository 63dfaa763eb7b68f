/** The one place where configuration keys become the broker core's options. */
import type { BrokerOptions } from "../broker/options.ts";
import type { QoS } from "../codec/packets.ts";
import type { SharedStrategy } from "../broker/shared_groups.ts";
import { EXPIRY_NEVER } from "../broker/model.ts";
import type { Config } from "./load.ts";

export function brokerOptionsFrom(
  config: Config,
  nodeId: string,
  /** The connection limit after the open-file limit was taken into account. */
  maxConnections: number = config.maxConnections,
): BrokerOptions {
  return {
    brokerId: config.brokerId,
    nodeId,
    connectTimeout: config.connectTimeout,
    maxConnections,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    limitLoopback: config.authLimitLoopback,
    maxPacketSize: config.maxPacketSize,
    maxTopicLevels: config.maxTopicLevels,
    maxTopicLength: config.maxTopicLength,
    maxSubscriptionsPerClient: config.maxSubscriptionsPerClient,
    maxInflight: config.maxInflight,
    maxQueuedMessages: config.maxQueuedMessages,
    maxQueuedBytes: config.maxQueuedBytes,
    queueFullPolicy: config.queueFullPolicy,
    maxQueuedBytesTotal: config.maxQueuedBytesTotal,
    maxSessions: config.maxSessions,
    maxSessionsPerUser: config.maxSessionsPerUser,
    maxSessionsPerAddress: config.maxSessionsPerAddress,
    outboundBufferBytes: config.outboundBufferBytes,
    slowConsumerTimeout: config.slowConsumerTimeout,
    retryInterval: config.retryInterval,
    maxPublishRate: config.maxPublishRate,
    maxPublishBurst: config.maxPublishBurst,
    sessionExpiryInterval: config.sessionExpiryInterval || EXPIRY_NEVER,
    keepAlive: config.keepAlive,
    maxKeepalive: config.maxKeepalive,
    receiveMaximum: config.receiveMaximum,
    topicAliasMaximum: config.topicAliasMaximum,
    maxQos: config.maxQos as QoS,
    retainAvailable: config.retainAvailable,
    maxRetainedMessages: config.maxRetainedMessages,
    maxRetainedBytes: config.maxRetainedBytes,
    sharedSubscriptionAvailable: config.sharedSubscriptionAvailable,
    sharedSubscriptionStrategy: config.sharedSubscriptionStrategy as SharedStrategy,
    // Not configurable: implemented, so always on.
    subscriptionIdentifiersAvailable: true,
    wildcardSubscriptionAvailable: config.wildcardSubscriptionAvailable,
    responseInformation: config.responseInformation,
    // In a cluster acks wait for Redis; otherwise for SQLite in sync mode.
    durable: config.clusterOn ||
      (config.persistence === "sqlite" && config.durability === "sync"),
    sysInterval: config.sysInterval,
  };
}
