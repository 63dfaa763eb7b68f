/**
 * The one place where a session change reaches the store, and the commit barrier that
 * acknowledgements wait behind.
 *
 * Every session mutation goes through a method here that writes only when the session is
 * persistent (a clean session lives and dies with its connection, in memory) and marks the store
 * dirty, so the next commit barrier covers it.
 */
import type { Will } from "../codec/packets.ts";
import type { Logger } from "../log.ts";
import type { OutboundEntry, StoredMessage, SubscriptionRecord } from "./model.ts";
import type { Store } from "./ports/store.ts";
import type { Session } from "./session.ts";

const RESOLVED = Promise.resolve();

export class Persistence {
  readonly store: Store;
  readonly #nodeId: string;
  readonly #durable: boolean;
  readonly #log: Logger;
  #dirty = false;
  #flushScheduled = false;
  #latestFlush: Promise<void> | null = null;

  /** `durable`: acknowledgements wait for the store's commit (a durable store in sync mode). */
  constructor(store: Store, nodeId: string, durable: boolean, log: Logger) {
    this.store = store;
    this.#nodeId = nodeId;
    this.#durable = durable;
    this.#log = log;
  }

  /**
   * Writes the session record (not its subscriptions or queue), owned by this node, with the
   * will of `username` (`willDueAt`: a delayed will waiting offline), or none.
   */
  saveSession(s: Session, will?: Will, username?: string, willDueAt?: number): void {
    if (!s.persistent) return;
    this.store.saveSession({
      clientId: s.clientId,
      expiryInterval: s.expiryInterval,
      disconnectedAt: s.disconnectedAt,
      protocolVersion: s.protocolVersion,
      node: this.#nodeId,
      will,
      willDueAt: will ? willDueAt : undefined,
      username: will ? username : undefined,
    });
    this.#dirty = true;
  }

  /**
   * Sets the session's expiry interval. A session that stops being persistent (5.0: expiry 0
   * at CONNECT or DISCONNECT) leaves the store now: it ends with its connection. A persistent
   * one is written with its next saveSession.
   */
  setExpiry(s: Session, expiryInterval: number): void {
    const was = s.persistent;
    s.expiryInterval = expiryInterval;
    if (was && !s.persistent) {
      this.store.deleteSession(s.clientId);
      this.#dirty = true;
    }
  }

  deleteSession(s: Session): void {
    if (!s.persistent) return;
    this.store.deleteSession(s.clientId);
    this.#dirty = true;
  }

  /** Deletes the stored session of `clientId`, which no session on this node stands for. */
  deleteRecord(clientId: string): void {
    this.store.deleteSession(clientId);
    this.#dirty = true;
  }

  addSubscription(s: Session, rec: SubscriptionRecord): void {
    if (!s.persistent) return;
    this.store.addSubscription(s.clientId, rec);
    this.#dirty = true;
  }

  removeSubscription(s: Session, filter: string): void {
    if (!s.persistent) return;
    this.store.removeSubscription(s.clientId, filter);
    this.#dirty = true;
  }

  putOutbound(s: Session, e: OutboundEntry): void {
    if (!s.persistent) return;
    this.store.putOutbound(s.clientId, e);
    this.#dirty = true;
  }

  removeOutbound(s: Session, seq: number): void {
    if (!s.persistent) return;
    this.store.removeOutbound(s.clientId, seq);
    this.#dirty = true;
  }

  addInboundQos2(s: Session, packetId: number): void {
    if (!s.persistent) return;
    this.store.addInboundQos2(s.clientId, packetId);
    this.#dirty = true;
  }

  removeInboundQos2(s: Session, packetId: number): void {
    if (!s.persistent) return;
    this.store.removeInboundQos2(s.clientId, packetId);
    this.#dirty = true;
  }

  /**
   * Why the store cannot commit now (a full disk, an unreachable Redis), or null. While set,
   * work that would need the store is refused rather than queued: QoS 1/2 PUBLISHes, new
   * persistent sessions and their SUBSCRIBEs.
   */
  get failure(): string | null {
    return this.store.failure();
  }

  /** See Store.beginUnit: what follows, until endUnit(), becomes durable in one commit. */
  beginUnit(): void {
    this.store.beginUnit();
  }

  endUnit(): void {
    this.store.endUnit();
  }

  /** Sets (or, with null, deletes) the retained message of `topic`. */
  setRetained(topic: string, msg: StoredMessage | null): void {
    this.store.setRetained(topic, msg);
    this.#dirty = true;
  }

  /**
   * A promise that resolves when every store mutation made so far is durable, or null when no
   * mutation is pending (or the store is not durable), so acks can go out at once.
   */
  commitBarrier(): Promise<void> | null {
    if (!this.#durable) return null;
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
        this.#log.error(`store commit failed: ${err?.message ?? err}`);
      });
    }
    return this.#latestFlush;
  }
}
