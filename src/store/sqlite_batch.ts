/**
 * The group-commit batch of the SQLite store: mutations issued between two commits, coalesced
 * per key so that short-lived state (an outbound entry put and acknowledged before the commit)
 * costs at most a primary-key lookup instead of an insert plus a delete.
 */
import type { OutboundEntry, SessionRecord, StoredMessage, SubscriptionRecord } from "./store.ts";

/**
 * Plain, structured-clonable form posted to the worker. Applying it in field order (deletions
 * of whole clients first) is equivalent to applying the original mutations in issue order.
 */
export interface BatchData {
  deletedClients: string[];
  sessions: SessionRecord[];
  subPuts: [clientId: string, sub: SubscriptionRecord][];
  subRemovals: [clientId: string, filter: string][];
  outPuts: [clientId: string, entry: OutboundEntry][];
  outRemovals: [clientId: string, seq: number][];
  inAdds: [clientId: string, packetId: number][];
  inRemovals: [clientId: string, packetId: number][];
  retainedPuts: [topic: string, message: StoredMessage][];
  retainedRemovals: string[];
}

interface ClientOps {
  /** The whole client was deleted earlier in this batch: rows of older batches are gone. */
  deleted: boolean;
  session?: SessionRecord;
  /** null: remove. */
  subs: Map<string, SubscriptionRecord | null>;
  out: Map<number, OutboundEntry | null>;
  /** true: add, false: remove. */
  inbound: Map<number, boolean>;
}

export class Batch {
  /** Mutations issued into this batch (before coalescing): drives the size trigger. */
  ops = 0;
  #clients = new Map<string, ClientOps>();
  #retained = new Map<string, StoredMessage | null>();
  #deferred?: { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void };

  get empty(): boolean {
    return this.ops === 0;
  }

  /** Whether someone waits for this batch: such a batch is committed without waiting. */
  get awaited(): boolean {
    return this.#deferred !== undefined;
  }

  /** Settles when this batch has been committed (or failed to). */
  promise(): Promise<void> {
    if (!this.#deferred) {
      let resolve!: () => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.#deferred = { promise, resolve, reject };
    }
    return this.#deferred.promise;
  }

  resolve(): void {
    this.#deferred?.resolve();
  }

  reject(e: Error): void {
    this.#deferred?.reject(e);
  }

  saveSession(s: SessionRecord): void {
    this.ops++;
    this.#client(s.clientId).session = { ...s };
  }

  deleteSession(clientId: string): void {
    this.ops++;
    this.#clients.set(clientId, {
      deleted: true,
      subs: new Map(),
      out: new Map(),
      inbound: new Map(),
    });
  }

  addSubscription(clientId: string, sub: SubscriptionRecord): void {
    this.ops++;
    this.#client(clientId).subs.set(sub.filter, { ...sub });
  }

  removeSubscription(clientId: string, filter: string): void {
    this.ops++;
    const c = this.#client(clientId);
    if (c.deleted) c.subs.delete(filter);
    else c.subs.set(filter, null);
  }

  putOutbound(clientId: string, entry: OutboundEntry): void {
    this.ops++;
    this.#client(clientId).out.set(entry.seq, { ...entry });
  }

  removeOutbound(clientId: string, seq: number): void {
    this.ops++;
    const c = this.#client(clientId);
    if (c.deleted) c.out.delete(seq);
    else c.out.set(seq, null);
  }

  addInboundQos2(clientId: string, packetId: number): void {
    this.ops++;
    this.#client(clientId).inbound.set(packetId, true);
  }

  removeInboundQos2(clientId: string, packetId: number): void {
    this.ops++;
    const c = this.#client(clientId);
    if (c.deleted) c.inbound.delete(packetId);
    else c.inbound.set(packetId, false);
  }

  setRetained(topic: string, message: StoredMessage | null): void {
    this.ops++;
    this.#retained.set(topic, message);
  }

  toData(): BatchData {
    const d: BatchData = {
      deletedClients: [],
      sessions: [],
      subPuts: [],
      subRemovals: [],
      outPuts: [],
      outRemovals: [],
      inAdds: [],
      inRemovals: [],
      retainedPuts: [],
      retainedRemovals: [],
    };
    for (const [id, c] of this.#clients) {
      if (c.deleted) d.deletedClients.push(id);
      if (c.session) d.sessions.push(c.session);
      for (const [filter, sub] of c.subs) {
        if (sub) d.subPuts.push([id, sub]);
        else d.subRemovals.push([id, filter]);
      }
      for (const [seq, e] of c.out) {
        if (e) d.outPuts.push([id, e]);
        else d.outRemovals.push([id, seq]);
      }
      for (const [pid, add] of c.inbound) {
        if (add) d.inAdds.push([id, pid]);
        else d.inRemovals.push([id, pid]);
      }
    }
    for (const [topic, m] of this.#retained) {
      if (m) d.retainedPuts.push([topic, m]);
      else d.retainedRemovals.push(topic);
    }
    return d;
  }

  /** Re-issues `d`'s mutations into this batch (to retry a failed commit before newer ones). */
  replay(d: BatchData): void {
    for (const id of d.deletedClients) this.deleteSession(id);
    for (const s of d.sessions) this.saveSession(s);
    for (const [id, sub] of d.subPuts) this.addSubscription(id, sub);
    for (const [id, f] of d.subRemovals) this.removeSubscription(id, f);
    for (const [id, e] of d.outPuts) this.putOutbound(id, e);
    for (const [id, seq] of d.outRemovals) this.removeOutbound(id, seq);
    for (const [id, p] of d.inAdds) this.addInboundQos2(id, p);
    for (const [id, p] of d.inRemovals) this.removeInboundQos2(id, p);
    for (const [t, m] of d.retainedPuts) this.setRetained(t, m);
    for (const t of d.retainedRemovals) this.setRetained(t, null);
  }

  /** Puts `d` (an older, failed batch) before everything already in this batch. */
  prepend(d: BatchData): void {
    const merged = new Batch();
    merged.replay(d);
    merged.replay(this.toData());
    this.#clients = merged.#clients;
    this.#retained = merged.#retained;
    this.ops = merged.ops;
  }

  #client(clientId: string): ClientOps {
    let c = this.#clients.get(clientId);
    if (!c) {
      c = { deleted: false, subs: new Map(), out: new Map(), inbound: new Map() };
      this.#clients.set(clientId, c);
    }
    return c;
  }
}
