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
import type {
  LoadedSession,
  OutboundEntry,
  SessionRecord,
  StoredMessage,
  SubscriptionRecord,
} from "../model.ts";

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

  /**
   * Opens an atomic unit: the mutations issued until the matching endUnit() become durable in
   * one commit, all or none — no size- or time-triggered commit splits them. Units nest (only the
   * outermost end closes it) and must be closed in the same synchronous turn. Used so that an
   * inbound QoS 2 packet id and the copies its message was routed to can never be durable apart:
   * copies without the id would be routed again when the publisher re-sends after a crash.
   * (On a Redis Cluster a unit spans one MULTI per hash slot: atomic per session, not across.)
   */
  beginUnit(): void;
  /** Closes the unit beginUnit() opened; commits that were held back may start now. */
  endUnit(): void;

  /**
   * Why commits currently fail (e.g. the disk is full), or null while they succeed. The store
   * keeps retrying what failed; meanwhile the broker refuses new work that needs the store.
   */
  failure(): string | null;

  /** Resolves when every mutation issued before this call is durable; rejects on write failure. */
  flush(): Promise<void>;
  /** Removes sessions whose expiry passed before `now` (ms); returns their client ids. */
  deleteExpiredSessions(now: number): Promise<string[]>;
}
