/** Limits and behaviour of the broker core, independent of where they were configured. */
import type { SharedStrategy } from "./shared_groups.ts";
import type { QoS } from "../codec/packets.ts";

/** What the core cannot find out itself: the version, and the process's heap (optional). */
export interface SystemInfo {
  /** Published as `$SYS/broker/version` ("mqttwk version <version>"). */
  version: string;
  /** Bytes of heap in use now, for `$SYS/broker/heap/current`. */
  heapUsed?: () => number;
}

export interface BrokerOptions {
  brokerId: string;
  nodeId: string;
  /** Seconds to wait for CONNECT after the transport connected. */
  connectTimeout: number;
  maxConnections: number;
  /** 0 = unlimited. */
  maxConnectionsPerIp: number;
  /**
   * Whether the per-address limit applies to loopback too: behind a local proxy every client is
   * 127.0.0.1, so by default it does not.
   */
  limitLoopback: boolean;
  maxPacketSize: number;
  maxTopicLevels: number;
  maxTopicLength: number;
  /** 0 = unlimited. */
  maxSubscriptionsPerClient: number;
  maxInflight: number;
  maxQueuedMessages: number;
  /** 0 = unlimited. */
  maxQueuedBytes: number;
  queueFullPolicy: "drop-new" | "drop-oldest";
  /**
   * Bytes all sessions together may hold queued (payload plus QUEUE_ENTRY_OVERHEAD per message);
   * beyond it the full-queue policy applies. 0 = unlimited.
   */
  maxQueuedBytesTotal: number;
  /** Persistent sessions (connected or offline) this node holds; 0 = unlimited. */
  maxSessions: number;
  /** Persistent sessions one authenticated user may hold; 0 = unlimited. */
  maxSessionsPerUser: number;
  /** Persistent sessions the unauthenticated clients of one address may hold; 0 = unlimited. */
  maxSessionsPerAddress: number;
  /** Bytes a connection may have waiting to be written before QoS 0 is dropped and feeding stops. */
  outboundBufferBytes: number;
  /** Seconds a connection may stay over its outbound buffer limit before it is disconnected. */
  slowConsumerTimeout: number;
  /** Seconds before an unacknowledged QoS 1/2 delivery is resent in-session; 0 = only on reconnect. */
  retryInterval: number;
  /**
   * PUBLISH packets per second one connection may send, as a token bucket refilled at this rate;
   * beyond it a 5.0 client gets DISCONNECT 0x96, a 3.1/3.1.1 one is closed. 0 = no limit.
   */
  maxPublishRate: number;
  /** The bucket's size: PUBLISHes a connection may send at once; 0 = `maxPublishRate`. */
  maxPublishBurst: number;
  /**
   * Session expiry (s) given to 3.1/3.1.1 persistent sessions, and the most an MQTT 5 client may
   * ask for (a longer Session Expiry Interval is lowered to it and the CONNACK says so);
   * 0xFFFFFFFF = never.
   */
  sessionExpiryInterval: number;
  /** The original broker's keep-alive setting; kept for compatibility, not used by the core. */
  keepAlive: number;
  /**
   * MQTT 5: the longest keepalive (s) a client may use; one asking for more, or for 0, is given
   * this value as Server Keep Alive. 0 = no cap. 3.1/3.1.1 clients keep what they asked for.
   */
  maxKeepalive: number;
  /**
   * MQTT 5 Receive Maximum: QoS 1/2 PUBLISHes a client may have unacknowledged towards the
   * broker (more: DISCONNECT 0x93). 65535 is the protocol's default and is not sent.
   */
  receiveMaximum: number;
  /** MQTT 5: topic aliases a client may set towards the broker (0 = none). */
  topicAliasMaximum: number;
  /** Highest QoS accepted in PUBLISH and wills, and granted to subscriptions (all levels). */
  maxQos: QoS;
  /** Whether retained messages are supported; off: a retained PUBLISH is a protocol error. */
  retainAvailable: boolean;
  /**
   * Retained messages this node stores (besides its own `$SYS` values); at the limit a message
   * for a new topic is delivered but not stored. 0 = unlimited.
   */
  maxRetainedMessages: number;
  /** Bytes of retained messages (payload + topic + RETAINED_ENTRY_OVERHEAD each); 0 = unlimited. */
  maxRetainedBytes: number;
  /** Shared subscriptions (`$share/`, `$queue/`); off: refused (0x9E), CONNACK says so. */
  sharedSubscriptionAvailable: boolean;
  /** How a shared group picks the one receiver of each message. */
  sharedSubscriptionStrategy: SharedStrategy;
  /**
   * Advertised in the MQTT 5 CONNACK; a SUBSCRIBE with a Subscription Identifier is refused
   * (0xA1) while off. Not a configuration key (on); off only for embedding and tests.
   */
  subscriptionIdentifiersAvailable: boolean;
  /**
   * Whether filters with `+` or `#` may be subscribed to; off: refused (5.0: 0xA2, 3.1.1:
   * 0x80) and the MQTT 5 CONNACK says so.
   */
  wildcardSubscriptionAvailable: boolean;
  /**
   * MQTT 5 Response Information sent to a client that asks for it (Request Response
   * Information = 1); empty = never sent.
   */
  responseInformation: string;
  /** Whether acknowledgements must wait for the store's commit (durable store in sync mode). */
  durable: boolean;
  /** Seconds between `$SYS` publications (sys_publisher.ts); 0 = none. */
  sysInterval: number;
}

/**
 * The core's defaults, for embedding and tests; they match the configuration's defaults (a test in
 * tests/config keeps them in line) except that `durable` and `$SYS` are off.
 */
export const defaultBrokerOptions: BrokerOptions = {
  brokerId: "mqttwk",
  nodeId: "node",
  connectTimeout: 10,
  maxConnections: 19000,
  maxConnectionsPerIp: 1000,
  limitLoopback: false,
  maxPacketSize: 1024 * 1024,
  maxTopicLevels: 128,
  maxTopicLength: 65535,
  maxSubscriptionsPerClient: 10000,
  maxInflight: 32,
  maxQueuedMessages: 1000,
  maxQueuedBytes: 0,
  queueFullPolicy: "drop-new",
  maxQueuedBytesTotal: 128 * 1024 * 1024,
  maxSessions: 100_000,
  maxSessionsPerUser: 10_000,
  maxSessionsPerAddress: 1000,
  outboundBufferBytes: 1024 * 1024,
  slowConsumerTimeout: 30,
  retryInterval: 0,
  maxPublishRate: 0,
  maxPublishBurst: 0,
  sessionExpiryInterval: 7200,
  keepAlive: 60,
  maxKeepalive: 0,
  receiveMaximum: 65535,
  topicAliasMaximum: 10,
  maxQos: 2,
  retainAvailable: true,
  maxRetainedMessages: 200_000,
  maxRetainedBytes: 128 * 1024 * 1024,
  sharedSubscriptionAvailable: true,
  sharedSubscriptionStrategy: "round_robin",
  subscriptionIdentifiersAvailable: true,
  wildcardSubscriptionAvailable: true,
  responseInformation: "",
  durable: false,
  // Off for embedding and tests: their retained sets stay their own.
  sysInterval: 0,
};
