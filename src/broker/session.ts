/**
 * A session's live state. Modelled on MQTT 5 (expiry interval instead of a clean flag): a 3.1.1
 * clean session is a session with expiry 0 that ends with its connection.
 */
import type { ProtocolVersion } from "../codec/packets.ts";
import { messageSize } from "./messages.ts";
import type { OutboundEntry, StoredMessage, SubscriptionRecord } from "./model.ts";
import {
  type InflightView,
  NO_PACKET_IDS,
  PacketIdTable,
  type PacketIdView,
} from "./packet_id_table.ts";
import type { ClientOutput } from "./output.ts";
import type { RetainedFeed } from "./retained_feed.ts";

// Shared stand-ins for collections not created yet; typed read-only so nothing writes to them.
const EMPTY_MAP: ReadonlyMap<never, never> = new Map<never, never>();
const NO_QUEUE: OutboundEntry[] = Object.freeze([]) as unknown as OutboundEntry[];

/**
 * What one queued message is counted as in the node-wide queue total besides its payload: the
 * entry and message objects it keeps alive (id, topic and origin strings, the payload's typed
 * array). Tiny payloads must not make a large queue look free: a fuzz run of anonymous clients
 * queueing tiny messages measured several hundred bytes of RSS per queued message.
 */
export const QUEUE_ENTRY_OVERHEAD = 512;

/** What one queued message counts as in the node-wide queue total. */
export function queuedCost(msg: StoredMessage): number {
  return messageSize(msg) + QUEUE_ENTRY_OVERHEAD;
}

/**
 * Set only while a cluster takeover delivers a dead node's stream backlog (synchronously, one
 * page at a time): what is queued then for a session still loading its backlog goes before the
 * newer messages waiting behind it.
 */
export const backlogTurn = { active: false };

/**
 * A session whose queue is still being loaded (from the store, or from a dead node's stream):
 * what is ready is in the session's queue; older entries not yet there are `tail` (delivered
 * from the stream, after the stored ones) and whatever the loader reads; `waiting` holds the
 * newer messages queued meanwhile, behind all of it (order per publisher).
 */
export interface Backlog {
  tail: OutboundEntry[];
  waiting: OutboundEntry[];
  /** Wakes the loader (the client drained the ready part, or the stream drain ended). */
  wake: (() => void) | null;
}

/** The loader wants more once fewer entries than this are ready. */
export const BACKLOG_LOW = 500;

/** The node-wide total of queued bytes, shared by every session (see maxQueuedBytesTotal). */
export interface QueueBudget {
  bytes: number;
}

export class Session {
  readonly clientId: string;
  expiryInterval: number;
  protocolVersion: ProtocolVersion;
  // The three collections are created on first write: an idle client with no subscriptions
  // then costs no hash tables (about 500 bytes each, times tens of thousands of connections).
  #subscriptions: Map<string, SubscriptionRecord> | null = null;
  /** Messages not yet sent, in order; consumed from `#head` to avoid O(n) shifts. */
  #queue: OutboundEntry[] = NO_QUEUE;
  #head = 0;
  queuedBytes = 0;
  /** What this session's queue counts as in the node-wide total (queuedCost of each). */
  #counted = 0;
  #inflight: PacketIdTable<OutboundEntry> | null = null;
  #inboundQos2: PacketIdTable<true> | null = null;
  nextSeq = 1;
  #nextPid = 1;
  /** The connection attached to the session, null while offline. */
  client: ClientOutput | null = null;
  disconnectedAt: number | null = null;
  /** Messages dropped because the queue was full (logged once per burst). */
  dropped = 0;
  /**
   * Whom the session counts against for the session limits ("user:NAME" or "addr:IP"); null for
   * a session restored from the store until a client resumes it.
   */
  owner: string | null = null;
  /** Retained messages still to be sent for recent SUBSCRIBEs, paced by the client's reading. */
  retainedFeed: RetainedFeed | null = null;
  readonly #budget: QueueBudget;
  /** Set while part of the queue is still being loaded (see Backlog). */
  backlog: Backlog | null = null;

  constructor(
    clientId: string,
    expiryInterval: number,
    protocolVersion: ProtocolVersion,
    budget: QueueBudget = { bytes: 0 },
  ) {
    this.clientId = clientId;
    this.expiryInterval = expiryInterval;
    this.protocolVersion = protocolVersion;
    this.#budget = budget;
  }

  /** Subscriptions by filter. */
  get subscriptions(): ReadonlyMap<string, SubscriptionRecord> {
    return this.#subscriptions ?? EMPTY_MAP;
  }

  setSubscription(rec: SubscriptionRecord): void {
    (this.#subscriptions ??= new Map()).set(rec.filter, rec);
  }

  deleteSubscription(filter: string): boolean {
    return this.#subscriptions?.delete(filter) ?? false;
  }

  /** Sent and unacknowledged (or PUBREL sent), by packet id, in send order. */
  get inflight(): InflightView {
    return this.#inflight ?? NO_PACKET_IDS;
  }

  setInflight(packetId: number, entry: OutboundEntry): void {
    (this.#inflight ??= new PacketIdTable()).set(packetId, entry);
  }

  deleteInflight(packetId: number): boolean {
    return this.#inflight?.delete(packetId) ?? false;
  }

  /** Inbound QoS 2 packet ids waiting for PUBREL (exactly-once de-duplication). */
  get inboundQos2(): PacketIdView<true> {
    return this.#inboundQos2 ?? NO_PACKET_IDS;
  }

  addInboundQos2(packetId: number): void {
    (this.#inboundQos2 ??= new PacketIdTable()).set(packetId, true);
  }

  deleteInboundQos2(packetId: number): boolean {
    return this.#inboundQos2?.delete(packetId) ?? false;
  }

  get persistent(): boolean {
    return this.expiryInterval > 0;
  }

  /** Every queued entry in memory (ready, and held behind a backlog still loading). */
  get queueLength(): number {
    const b = this.backlog;
    const held = b === null ? 0 : b.tail.length + b.waiting.length;
    return this.#queue.length - this.#head + held;
  }

  /** Queued entries that may be sent now (in order). */
  get readyLength(): number {
    return this.#queue.length - this.#head;
  }

  enqueue(entry: OutboundEntry): void {
    const b = this.backlog;
    if (b !== null) (backlogTurn.active ? b.tail : b.waiting).push(entry);
    else {
      if (this.#queue === NO_QUEUE) this.#queue = [];
      this.#queue.push(entry);
    }
    this.#count(entry);
  }

  /** Appends entries read from the store's backlog, in order, to what is ready. */
  enqueueReady(entries: OutboundEntry[]): void {
    if (entries.length === 0) return;
    if (this.#queue === NO_QUEUE) this.#queue = [];
    for (const e of entries) {
      this.#queue.push(e);
      this.#count(e);
    }
  }

  /** Moves up to `max` held stream-backlog entries into the ready queue; returns how many. */
  takeTail(max: number): number {
    const b = this.backlog;
    if (b === null || b.tail.length === 0) return 0;
    const part = b.tail.splice(0, max);
    if (this.#queue === NO_QUEUE) this.#queue = [];
    for (const e of part) this.#queue.push(e);
    return part.length;
  }

  /** The backlog is loaded: the messages that waited behind it become ready. */
  endBacklog(): void {
    const b = this.backlog;
    if (b === null) return;
    this.backlog = null;
    if (b.tail.length + b.waiting.length === 0) return;
    if (this.#queue === NO_QUEUE) this.#queue = [];
    for (const e of b.tail) this.#queue.push(e);
    for (const e of b.waiting) this.#queue.push(e);
  }

  /** The client drained what was ready: the backlog loader reads on if it waits. */
  wantBacklog(): void {
    const b = this.backlog;
    if (b !== null && b.wake !== null && this.readyLength < BACKLOG_LOW) {
      const w = b.wake;
      b.wake = null;
      w();
    }
  }

  #count(entry: OutboundEntry): void {
    this.queuedBytes += entry.message.payload.byteLength;
    const c = queuedCost(entry.message);
    this.#counted += c;
    this.#budget.bytes += c;
  }

  dequeue(): OutboundEntry | undefined {
    if (this.#head >= this.#queue.length) return undefined;
    const e = this.#queue[this.#head];
    this.#queue[this.#head++] = undefined as unknown as OutboundEntry;
    this.#unqueued(e);
    if (this.#head === this.#queue.length) {
      // Drained: give the array back (an idle session holds none).
      this.#queue = NO_QUEUE;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      // Compact once the consumed prefix dominates, keeping dequeue amortised O(1).
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return e;
  }

  /** An entry left the queue: its bytes leave the session's and the node's totals. */
  #unqueued(e: OutboundEntry): void {
    this.queuedBytes -= e.message.payload.byteLength;
    const c = queuedCost(e.message);
    this.#counted -= c;
    this.#budget.bytes -= c;
  }

  /** Calls `fn` with every queued entry in memory, in order. */
  forEachQueued(fn: (e: OutboundEntry) => void): void {
    for (let i = this.#head; i < this.#queue.length; i++) fn(this.#queue[i]);
    const b = this.backlog;
    if (b !== null) {
      for (const e of b.tail) fn(e);
      for (const e of b.waiting) fn(e);
    }
  }

  /** Removes the queued entries `keep` rejects, in order; returns them. */
  dropQueued(keep: (e: OutboundEntry) => boolean): OutboundEntry[] {
    const dropped: OutboundEntry[] = [];
    const kept: OutboundEntry[] = [];
    for (let i = this.#head; i < this.#queue.length; i++) {
      const e = this.#queue[i];
      if (keep(e)) kept.push(e);
      else {
        dropped.push(e);
        this.#unqueued(e);
      }
    }
    if (dropped.length > 0) {
      this.#queue = kept.length > 0 ? kept : NO_QUEUE;
      this.#head = 0;
    }
    const b = this.backlog;
    if (b !== null) {
      const drop = (e: OutboundEntry) => {
        if (keep(e)) return true;
        dropped.push(e);
        this.#unqueued(e);
        return false;
      };
      b.tail = b.tail.filter(drop);
      b.waiting = b.waiting.filter(drop);
    }
    return dropped;
  }

  /** Gives the queue up (the session ends): its bytes leave the node-wide total. */
  releaseQueue(): void {
    this.#budget.bytes -= this.#counted;
    this.#counted = 0;
    this.#queue = NO_QUEUE;
    this.#head = 0;
    this.queuedBytes = 0;
    this.retainedFeed = null;
    const b = this.backlog;
    this.backlog = null;
    b?.wake?.();
  }

  /** A packet id not used by any in-flight outbound message. */
  allocatePacketId(): number {
    for (let i = 0; i < 65535; i++) {
      const id = this.#nextPid;
      this.#nextPid = id === 65535 ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
    throw new RangeError("no free packet identifier");
  }

  /** Continues packet id allocation after ids restored from the store. */
  notePacketId(id: number): void {
    this.#nextPid = id === 65535 ? 1 : id + 1;
  }
}
