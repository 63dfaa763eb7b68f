/**
 * The one persistence interface of the broker. Implementations: memory (tests, `persistence:
 * memory`), embedded SQLite (the default), Redis (cluster). tests/store/contract.ts runs the
 * same cases against every implementation.
 *
 * The broker core keeps the live state of connected sessions in memory and writes every change
 * of persistent state through this interface. Mutations are buffered and synchronous (no promise
 * per packet on the hot path); `flush()` resolves once every mutation issued before it is
 * durable. The core acknowledges a QoS 1/2 PUBLISH only after the flush that covers the message
 * and the queue entries it created has resolved. Implementations group many mutations into one
 * commit ("group commit").
 */
import type { Properties, ProtocolVersion, QoS, Will } from "../codec/packets.ts";

/** Session expiry value meaning "never expires" (MQTT 5 0xFFFFFFFF). */
export const EXPIRY_NEVER = 0xffffffff;

/** An application message as stored: immutable once created. */
export interface StoredMessage {
  /** Unique id (node id + counter), stable across queues; used for de-duplication. */
  id: string;
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  /** MQTT 5 properties carried through (user properties, expiry, content type, ...). */
  properties?: Properties;
  /** ms since epoch, when the broker accepted it. */
  createdAt: number;
  /** ms since epoch after which it must not be delivered (MQTT 5 Message Expiry); absent: never. */
  expiresAt?: number;
  /** Client id of the publisher (for no-local, bridges, logs). */
  origin?: string;
  /** DUP flag of the PUBLISH it arrived in (bridges report it; never persisted). */
  dup?: boolean;
}

export interface SessionRecord {
  clientId: string;
  /** Seconds after disconnect that the session lives on; 0 = ends with the connection. */
  expiryInterval: number;
  /** ms since epoch of the last disconnect; null while a connection is attached. */
  disconnectedAt: number | null;
  protocolVersion: ProtocolVersion;
  /** Will kept for MQTT 5 delayed wills / cluster takeover; absent if none. */
  will?: Will;
  /**
   * Username of the connection the will belongs to, so a node that adopts the session authorizes
   * the will as that user. Kept by the stores a cluster uses (memory, Redis); SQLite, which no
   * other node adopts from, does not keep it.
   */
  username?: string;
  /** Node currently owning the session (cluster); absent on a single node. */
  node?: string;
}

export interface SubscriptionRecord {
  filter: string;
  qos: QoS;
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: 0 | 1 | 2;
  subscriptionId?: number;
}

/**
 * One outbound message of a session, in session order (`seq` ascending).
 * - "queued": not sent yet (offline, or beyond the in-flight window).
 * - "sent": PUBLISH sent with `packetId`, waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
 * - "released": PUBREL sent for `packetId`, waiting for PUBCOMP; the message body is no longer
 *   needed but kept so the entry stays self-describing.
 */
export interface OutboundEntry {
  seq: number;
  message: StoredMessage;
  /** QoS it is delivered with (min of message QoS and subscription QoS). */
  qos: QoS;
  /** RETAIN flag it is delivered with. */
  retain: boolean;
  state: "queued" | "sent" | "released";
  packetId?: number;
}

/** Everything a persistent session needs when it is resumed. */
export interface LoadedSession {
  session: SessionRecord;
  subscriptions: SubscriptionRecord[];
  /** Ordered by seq. */
  outbound: OutboundEntry[];
  /** Packet ids of inbound QoS 2 PUBLISHes received and not yet released by PUBREL. */
  inboundQos2: number[];
}

export interface Store {
  /** Opens (creating if needed) and checks the backing storage. Throws a clear error if unusable. */
  open(): Promise<void>;
  /** Flushes and closes. */
  close(): Promise<void>;

  // --- start-up / resume ---------------------------------------------------------------
  /** All sessions with everything they hold (single-node start-up). */
  loadSessions(): Promise<LoadedSession[]>;
  /** One session, or null (cluster resume on another node). */
  loadSession(clientId: string): Promise<LoadedSession | null>;
  /** Every retained message. */
  loadRetained(): Promise<StoredMessage[]>;

  // --- buffered mutations (synchronous; made durable by the next flush) ---------------
  /** Creates or replaces the session record (not its subscriptions or queue). */
  saveSession(session: SessionRecord): void;
  /** Removes the session and all it holds: subscriptions, outbound entries, inbound QoS 2 ids. */
  deleteSession(clientId: string): void;
  addSubscription(clientId: string, sub: SubscriptionRecord): void;
  removeSubscription(clientId: string, filter: string): void;
  /** Appends (or replaces, same seq) an outbound entry. */
  putOutbound(clientId: string, entry: OutboundEntry): void;
  removeOutbound(clientId: string, seq: number): void;
  addInboundQos2(clientId: string, packetId: number): void;
  removeInboundQos2(clientId: string, packetId: number): void;
  /** Sets the retained message of `topic`; null deletes it. */
  setRetained(topic: string, message: StoredMessage | null): void;

  /** Resolves when every mutation issued before this call is durable; rejects on write failure. */
  flush(): Promise<void>;
  /** Removes sessions whose expiry passed before `now` (ms); returns their client ids. */
  deleteExpiredSessions(now: number): Promise<string[]>;
}

/** What a store logs through: commit failures and recoveries. */
export interface StoreLogger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

/** For stores created without a logger (tests, tools): warnings and errors to the console. */
export const consoleStoreLogger: StoreLogger = {
  info: () => {},
  warn: (m) => console.warn(m),
  error: (m) => console.error(m),
};
