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
import { PacketIdTable } from "../broker/packet_id_table.ts";
import { SeqList } from "./seq_list.ts";

interface ClientState {
  session?: SessionRecord;
  subscriptions: Map<string, SubscriptionRecord>;
  /** Not Maps/Sets: they gain and lose an entry per message (see seq_list.ts). */
  outbound: SeqList<OutboundEntry>;
  /** Made on first use: most sessions never receive QoS 2. */
  inboundQos2: PacketIdTable<number> | null;
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
    this.#state(clientId).outbound.set({ ...entry });
  }

  removeOutbound(clientId: string, seq: number): void {
    this.#clients.get(clientId)?.outbound.delete(seq);
  }

  addInboundQos2(clientId: string, packetId: number): void {
    const state = this.#state(clientId);
    (state.inboundQos2 ??= new PacketIdTable()).set(packetId, packetId);
  }

  removeInboundQos2(clientId: string, packetId: number): void {
    this.#clients.get(clientId)?.inboundQos2?.delete(packetId);
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
      state = {
        subscriptions: new Map(),
        outbound: new SeqList(),
        inboundQos2: null,
      };
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
  return {
    session: { ...state.session },
    subscriptions: [...state.subscriptions.values()].map((s) => ({ ...s })),
    outbound: state.outbound.values().map((e) => ({ ...e })),
    inboundQos2: state.inboundQos2 ? [...state.inboundQos2.values()] : [],
  };
}
