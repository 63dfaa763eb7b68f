/**
 * In-memory Store: tests and `persistence: memory`. Nothing survives the process, so flush() has
 * nothing to wait for.
 */
import {
  EXPIRY_NEVER,
  type LoadedSession,
  type OutboundEntry,
  type SessionRecord,
  type StoredMessage,
  type SubscriptionRecord,
} from "../broker/model.ts";
import type { Store } from "../broker/ports/store.ts";

interface ClientState {
  session?: SessionRecord;
  subscriptions: Map<string, SubscriptionRecord>;
  outbound: Map<number, OutboundEntry>;
  inboundQos2: Set<number>;
}

const RESOLVED: Promise<void> = Promise.resolve();

export class MemoryStore implements Store {
  #clients = new Map<string, ClientState>();
  #retained = new Map<string, StoredMessage>();

  open(): Promise<void> {
    return RESOLVED;
  }

  /** Memory never fails to take a mutation. */
  failure(): string | null {
    return null;
  }

  /** Every mutation applies at once and nothing survives the process: nothing to group. */
  beginUnit(): void {}

  endUnit(): void {}

  close(): Promise<void> {
    return RESOLVED;
  }

  loadSessions(): Promise<LoadedSession[]> {
    const out: LoadedSession[] = [];
    for (const state of this.#clients.values()) {
      const loaded = snapshot(state);
      if (loaded) out.push(loaded);
    }
    return Promise.resolve(out);
  }

  loadSession(clientId: string): Promise<LoadedSession | null> {
    const state = this.#clients.get(clientId);
    return Promise.resolve(state ? snapshot(state) : null);
  }

  loadRetained(): Promise<StoredMessage[]> {
    return Promise.resolve([...this.#retained.values()]);
  }

  saveSession(session: SessionRecord): void {
    this.#state(session.clientId).session = { ...session };
  }

  deleteSession(clientId: string): void {
    this.#clients.delete(clientId);
  }

  addSubscription(clientId: string, sub: SubscriptionRecord): void {
    this.#state(clientId).subscriptions.set(sub.filter, { ...sub });
  }

  removeSubscription(clientId: string, filter: string): void {
    this.#clients.get(clientId)?.subscriptions.delete(filter);
  }

  putOutbound(clientId: string, entry: OutboundEntry): void {
    // Messages are immutable by contract, so only the entry itself is copied.
    this.#state(clientId).outbound.set(entry.seq, { ...entry });
  }

  removeOutbound(clientId: string, seq: number): void {
    this.#clients.get(clientId)?.outbound.delete(seq);
  }

  addInboundQos2(clientId: string, packetId: number): void {
    this.#state(clientId).inboundQos2.add(packetId);
  }

  removeInboundQos2(clientId: string, packetId: number): void {
    this.#clients.get(clientId)?.inboundQos2.delete(packetId);
  }

  setRetained(topic: string, message: StoredMessage | null): void {
    if (message) this.#retained.set(topic, message);
    else this.#retained.delete(topic);
  }

  flush(): Promise<void> {
    return RESOLVED;
  }

  deleteExpiredSessions(now: number): Promise<string[]> {
    const expired: string[] = [];
    for (const [clientId, state] of this.#clients) {
      const s = state.session;
      if (s && isExpired(s, now)) {
        expired.push(clientId);
        this.#clients.delete(clientId);
      }
    }
    return Promise.resolve(expired);
  }

  #state(clientId: string): ClientState {
    let state = this.#clients.get(clientId);
    if (!state) {
      state = { subscriptions: new Map(), outbound: new Map(), inboundQos2: new Set() };
      this.#clients.set(clientId, state);
    }
    return state;
  }
}

/** Shared by every implementation so they agree on the boundary. */
export function isExpired(s: SessionRecord, now: number): boolean {
  return s.disconnectedAt !== null && s.expiryInterval !== EXPIRY_NEVER &&
    s.disconnectedAt + s.expiryInterval * 1000 <= now;
}

function snapshot(state: ClientState): LoadedSession | null {
  if (!state.session) return null;
  const outbound = [...state.outbound.values()].map((e) => ({ ...e }));
  outbound.sort((a, b) => a.seq - b.seq);
  return {
    session: { ...state.session },
    subscriptions: [...state.subscriptions.values()].map((s) => ({ ...s })),
    outbound,
    inboundQos2: [...state.inboundQos2],
  };
}
