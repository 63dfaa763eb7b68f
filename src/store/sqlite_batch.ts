/**
 * The group-commit batch of the SQLite store: mutations issued between two commits, coalesced
 * per key so that short-lived state (an outbound entry put and acknowledged before the commit)
 * costs at most a primary-key lookup instead of an insert plus a delete.
 */
import type { Properties, QoS } from "../codec/packets.ts";
import type {
  OutboundEntry,
  SessionRecord,
  StoredMessage,
  SubscriptionRecord,
} from "../broker/model.ts";

/**
 * Structured-clonable form posted to the worker. Applying it in field order (deletions of whole
 * clients first) is equivalent to applying the original mutations in issue order.
 *
 * The bulky parts are flat arrays of primitives (OUT_STRIDE / RETAINED_STRIDE values per row,
 * in the column order of the INSERT statements): posting those to a worker costs about a tenth
 * of posting the equivalent objects, and that cost is paid on the thread serving the sockets.
 */
export interface BatchData {
  deletedClients: string[];
  sessions: SessionRecord[];
  subPuts: [clientId: string, sub: SubscriptionRecord][];
  /** clientId, filter pairs. */
  subRemovals: string[];
  /** OUT_STRIDE values per entry; see pushEntry(). */
  outPuts: Flat[];
  /** clientId, seq pairs. */
  outRemovals: (string | number)[];
  /** clientId, packetId pairs. */
  inAdds: (string | number)[];
  inRemovals: (string | number)[];
  /** RETAINED_STRIDE values per message; see pushMessage(). */
  retainedPuts: Flat[];
  retainedRemovals: string[];
}

export type Flat = string | number | null | Uint8Array | Properties;

export const MESSAGE_STRIDE = 9;
/** The entry's columns, its message's, then its Subscription Identifiers ("1,5" or null). */
export const OUT_STRIDE = 7 + MESSAGE_STRIDE;
export const RETAINED_STRIDE = 1 + MESSAGE_STRIDE;
/** Offset of the properties value inside a message's values (encoded to JSON by the writer). */
export const PROPS_OFFSET = 5;

const STATES = ["queued", "sent", "released"] as const;
const STATE_CODE = { queued: 0, sent: 1, released: 2 } as const;

function exact(b: Uint8Array): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : b.slice();
}

function pushMessage(a: Flat[], m: StoredMessage): void {
  a.push(
    m.id,
    m.topic,
    // Posting a view to the worker clones its whole buffer: a payload that still sits in a
    // socket chunk with other bytes is cut out first.
    exact(m.payload),
    m.qos,
    m.retain ? 1 : 0,
    m.properties ?? null,
    m.createdAt,
    m.expiresAt ?? null,
    m.origin ?? null,
  );
}

function readMessage(a: Flat[], i: number): StoredMessage {
  const m: StoredMessage = {
    id: a[i] as string,
    topic: a[i + 1] as string,
    payload: a[i + 2] as Uint8Array,
    qos: a[i + 3] as QoS,
    retain: a[i + 4] === 1,
    createdAt: a[i + 6] as number,
  };
  if (a[i + 5] !== null) m.properties = a[i + 5] as Properties;
  if (a[i + 7] !== null) m.expiresAt = a[i + 7] as number;
  if (a[i + 8] !== null) m.origin = a[i + 8] as string;
  return m;
}

function pushEntry(a: Flat[], clientId: string, e: OutboundEntry): void {
  a.push(clientId, e.seq, e.qos, e.retain ? 1 : 0, STATE_CODE[e.state], e.packetId ?? null);
  pushMessage(a, e.message);
  a.push(e.subscriptionIds ? e.subscriptionIds.join(",") : null);
}

function readEntry(a: Flat[], i: number): OutboundEntry {
  const e: OutboundEntry = {
    seq: a[i + 1] as number,
    message: readMessage(a, i + 6),
    qos: a[i + 2] as QoS,
    retain: a[i + 3] === 1,
    state: STATES[a[i + 4] as number],
  };
  if (a[i + 5] !== null) e.packetId = a[i + 5] as number;
  const ids = a[i + 6 + MESSAGE_STRIDE];
  if (ids !== null) e.subscriptionIds = parseSubscriptionIds(ids as string);
  return e;
}

/** Subscription Identifiers as stored ("1,5"). */
export function parseSubscriptionIds(s: string): number[] {
  return s.split(",").map(Number);
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
        else d.subRemovals.push(id, filter);
      }
      for (const [seq, e] of c.out) {
        if (e) pushEntry(d.outPuts, id, e);
        else d.outRemovals.push(id, seq);
      }
      for (const [pid, add] of c.inbound) {
        if (add) d.inAdds.push(id, pid);
        else d.inRemovals.push(id, pid);
      }
    }
    for (const [topic, m] of this.#retained) {
      if (m) {
        d.retainedPuts.push(topic);
        pushMessage(d.retainedPuts, m);
      } else d.retainedRemovals.push(topic);
    }
    return d;
  }

  /** Re-issues `d`'s mutations into this batch (to retry a failed commit before newer ones). */
  replay(d: BatchData): void {
    for (const id of d.deletedClients) this.deleteSession(id);
    for (const s of d.sessions) this.saveSession(s);
    for (const [id, sub] of d.subPuts) this.addSubscription(id, sub);
    const pairs = (a: (string | number)[], fn: (id: string, k: never) => void) => {
      for (let i = 0; i < a.length; i += 2) fn(a[i] as string, a[i + 1] as never);
    };
    pairs(d.subRemovals, (id, f: string) => this.removeSubscription(id, f));
    for (let i = 0; i < d.outPuts.length; i += OUT_STRIDE) {
      this.putOutbound(d.outPuts[i] as string, readEntry(d.outPuts, i));
    }
    pairs(d.outRemovals, (id, seq: number) => this.removeOutbound(id, seq));
    pairs(d.inAdds, (id, p: number) => this.addInboundQos2(id, p));
    pairs(d.inRemovals, (id, p: number) => this.removeInboundQos2(id, p));
    for (let i = 0; i < d.retainedPuts.length; i += RETAINED_STRIDE) {
      this.setRetained(d.retainedPuts[i] as string, readMessage(d.retainedPuts, i + 1));
    }
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
