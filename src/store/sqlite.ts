/**
 * Embedded SQLite store (the default persistence): one file `<dir>/mqttwk.db` in WAL mode.
 *
 * Group commit: mutations are coalesced into an in-memory batch (see sqlite_batch.ts). A batch
 * is committed, as one transaction, when it reaches `maxBatchOps` mutations, `commitIntervalMs`
 * after its first mutation, or — with durability "sync" — as soon as someone flushes it and no
 * other commit is running. One commit runs at a time; mutations issued meanwhile form the next
 * batch, so the batch size adapts to the load and fsyncs are shared by all waiting flushes.
 *
 * Durability:
 * - "sync": synchronous=FULL; flush() resolves after the commit holding everything issued before
 *   it has been fsynced, and rejects if that commit failed.
 * - "interval": synchronous=NORMAL; flush() resolves at once, so an acknowledged message may be
 *   lost if the process or machine dies within about `commitIntervalMs` (plus one commit's
 *   duration) of it. A process crash alone loses only the uncommitted batch; a power loss can
 *   also lose commits not yet checkpointed by the OS. While commits are failing, flush() rejects.
 *
 * A failed commit is logged, rejects the flushes waiting for it and is retried (with backoff,
 * merged under newer mutations) until it succeeds, so nothing is dropped silently.
 *
 * By default the connection lives in a worker (sqlite_worker.ts): an fsync or a large load then
 * does not stall the event loop that serves the sockets.
 */
import { join } from "node:path";
import { Batch } from "./sqlite_batch.ts";
import { DB_FILE, SqliteDb } from "./sqlite_db.ts";
import { checkPresence, type IntegrityCheck, MARKER_FILE, writeMarker } from "./sqlite_check.ts";
import { type Call, Handler, type Response, type ThreadMemory } from "./sqlite_protocol.ts";
import { consoleStoreLogger, type StoreLogger } from "./logger.ts";
import type {
  LoadedSession,
  OutboundEntry,
  SessionRecord,
  StoredMessage,
  SubscriptionRecord,
} from "../broker/model.ts";
import type { Store } from "../broker/ports/store.ts";

export interface SqliteStoreOptions {
  /** Directory of the database file; created on open. */
  dir: string;
  durability: "sync" | "interval";
  /** Longest time a mutation waits in the batch before a commit starts. */
  commitIntervalMs: number;
  logger?: StoreLogger;
  /** Run SQLite in a worker (default true); false runs it on the calling thread. */
  worker?: boolean;
  /** Batch size that starts a commit without waiting for the interval (default 1000). */
  maxBatchOps?: number;
  /** How the file is checked when opened (default "quick": PRAGMA quick_check). */
  integrityCheck?: IntegrityCheck;
}

/** Longest pause between retries of a failing commit. */
const MAX_RETRY_MS = 2000;
const RESOLVED: Promise<void> = Promise.resolve();

interface Backend {
  call(call: Call): Promise<unknown>;
  terminate(): void;
}

export class SqliteStore implements Store {
  readonly path: string;
  #opts: Required<Omit<SqliteStoreOptions, "logger">>;
  #log: StoreLogger;
  #backend: Backend | null = null;
  /**
   * Worker mode: a read-only connection on this thread for loads. Posting 100k rows back from
   * the worker would cost as much again as reading them, and loads run at start-up (before
   * clients are served) or for one session at a time.
   */
  #reader: SqliteDb | null = null;
  #closed = false;
  #pending = new Batch();
  #inflight: Batch | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The interval elapsed while a commit was running: commit right after it. */
  #due = false;
  #kickQueued = false;
  #lastError: Error | null = null;
  #failures = 0;
  /** Open atomic units (beginUnit): no commit starts while > 0. */
  #unit = 0;
  /** A commit was due inside a unit. */
  #kickAfterUnit = false;
  #stats = {
    commits: 0,
    failedCommits: 0,
    mutations: 0,
    commitMs: 0,
    blockedMs: 0,
    maxBlockedMs: 0,
  };

  constructor(opts: SqliteStoreOptions) {
    this.#opts = { worker: true, maxBatchOps: 1000, integrityCheck: "quick", ...opts };
    this.#log = opts.logger ?? consoleStoreLogger;
    this.path = join(opts.dir, DB_FILE);
  }

  /**
   * Counters for metrics and benchmarks. `commitMs` sums commit round trips; `blockedMs` and
   * `maxBlockedMs` are the part of them spent synchronously on the calling thread.
   */
  stats(): {
    commits: number;
    failedCommits: number;
    mutations: number;
    commitMs: number;
    blockedMs: number;
    maxBlockedMs: number;
  } {
    return { ...this.#stats };
  }

  /**
   * Memory held on the store's behalf, for diagnosis: the isolate and connection that commit
   * (the worker's, or this thread's with `worker: false`) and, in worker mode, the page cache
   * limit of this thread's read-only connection.
   */
  async memory(): Promise<ThreadMemory & { readerCacheLimitKiB: number | null }> {
    const m = await this.#call({ op: "memory" }) as ThreadMemory;
    return { ...m, readerCacheLimitKiB: this.#reader?.memory().cacheLimitKiB ?? null };
  }

  async open(): Promise<void> {
    if (this.#backend) return;
    if (this.#closed) throw new Error("the SQLite store was closed; create a new one");
    try {
      await Deno.mkdir(this.#opts.dir, { recursive: true });
    } catch (e) {
      throw new Error(
        `Cannot create the store directory ${this.#opts.dir}: ${(e as Error).message}. ` +
          `Create it or fix its permissions, or configure another directory.`,
        { cause: e },
      );
    }
    const marker = join(this.#opts.dir, MARKER_FILE);
    const created = checkPresence(this.path, marker);
    const backend = this.#opts.worker ? new WorkerBackend() : new InlineBackend();
    const started = performance.now();
    try {
      await backend.call({
        op: "open",
        arg: {
          path: this.path,
          sync: this.#opts.durability === "sync",
          integrityCheck: this.#opts.integrityCheck,
        },
      });
      // From now on a missing or empty file here is an error, not a fresh start.
      if (created) writeMarker(marker, this.path);
      if (this.#opts.worker) {
        this.#reader = new SqliteDb({ path: this.path, sync: false, readOnly: true });
      }
    } catch (e) {
      backend.terminate();
      throw e;
    }
    this.#backend = backend;
    const check = this.#opts.integrityCheck === "off"
      ? "integrity check off"
      : `${this.#opts.integrityCheck} integrity check passed`;
    this.#log.info(
      `store: opened ${this.path} (durability ${this.#opts.durability}, ` +
        `${this.#opts.worker ? "worker" : "in-thread"}, ${check}, ` +
        `${Math.round(performance.now() - started)} ms)`,
    );
  }

  async close(): Promise<void> {
    const backend = this.#backend;
    if (!backend) return;
    try {
      await this.#drain();
    } finally {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#backend = null;
      this.#closed = true;
      // Before the writer's close, whose final checkpoint a reader would hold back.
      this.#reader?.close();
      this.#reader = null;
      try {
        await backend.call({ op: "close" });
      } catch (e) {
        this.#log.warn(`store: closing ${this.path}: ${(e as Error).message}`);
      }
      backend.terminate();
    }
  }

  async loadSessions(): Promise<LoadedSession[]> {
    await this.#drain();
    if (this.#reader) return this.#reader.loadSessions();
    return await this.#call({ op: "loadSessions" }) as LoadedSession[];
  }

  async loadSession(clientId: string): Promise<LoadedSession | null> {
    await this.#drain();
    if (this.#reader) return this.#reader.loadSession(clientId);
    return await this.#call({ op: "loadSession", arg: clientId }) as LoadedSession | null;
  }

  async loadRetained(): Promise<StoredMessage[]> {
    await this.#drain();
    if (this.#reader) return this.#reader.loadRetained();
    return await this.#call({ op: "loadRetained" }) as StoredMessage[];
  }

  async deleteExpiredSessions(now: number): Promise<string[]> {
    // Pending saves must reach the table first, or a session saved just now would be missed.
    await this.#drain();
    const ids = await this.#call({ op: "deleteExpired", arg: now }) as string[];
    if (ids.length > 0) this.#log.info(`store: deleted ${ids.length} expired session(s)`);
    return ids;
  }

  saveSession(session: SessionRecord): void {
    this.#batch().saveSession(session);
    this.#touched();
  }

  deleteSession(clientId: string): void {
    this.#batch().deleteSession(clientId);
    this.#touched();
  }

  addSubscription(clientId: string, sub: SubscriptionRecord): void {
    this.#batch().addSubscription(clientId, sub);
    this.#touched();
  }

  removeSubscription(clientId: string, filter: string): void {
    this.#batch().removeSubscription(clientId, filter);
    this.#touched();
  }

  putOutbound(clientId: string, entry: OutboundEntry): void {
    this.#batch().putOutbound(clientId, entry);
    this.#touched();
  }

  removeOutbound(clientId: string, seq: number): void {
    this.#batch().removeOutbound(clientId, seq);
    this.#touched();
  }

  addInboundQos2(clientId: string, packetId: number): void {
    this.#batch().addInboundQos2(clientId, packetId);
    this.#touched();
  }

  removeInboundQos2(clientId: string, packetId: number): void {
    this.#batch().removeInboundQos2(clientId, packetId);
    this.#touched();
  }

  setRetained(topic: string, message: StoredMessage | null): void {
    this.#batch().setRetained(topic, message);
    this.#touched();
  }

  failure(): string | null {
    return this.#lastError?.message ?? null;
  }

  beginUnit(): void {
    this.#unit++;
  }

  endUnit(): void {
    if (this.#unit === 0 || --this.#unit > 0 || !this.#kickAfterUnit) return;
    this.#kickAfterUnit = false;
    this.#kick();
  }

  flush(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("the SQLite store is closed"));
    if (this.#opts.durability === "interval") {
      return this.#lastError ? Promise.reject(this.#lastError) : RESOLVED;
    }
    if (this.#pending.empty) return this.#inflight ? this.#inflight.promise() : RESOLVED;
    const p = this.#pending.promise();
    // A microtask rather than now: the rest of the current event's mutations join this commit.
    if (!this.#inflight && !this.#lastError && !this.#kickQueued) {
      this.#kickQueued = true;
      queueMicrotask(() => {
        this.#kickQueued = false;
        this.#kick();
      });
    }
    return p;
  }

  #batch(): Batch {
    if (this.#closed) throw new Error("the SQLite store is closed");
    return this.#pending;
  }

  #touched(): void {
    if (this.#pending.ops >= this.#opts.maxBatchOps && !this.#lastError) this.#kick();
    else if (this.#timer === undefined) this.#arm(this.#opts.commitIntervalMs);
  }

  #arm(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#inflight) this.#due = true;
      else this.#kick();
    }, ms);
  }

  #kick(): void {
    const backend = this.#backend;
    if (!backend || this.#inflight || this.#pending.empty) return;
    if (this.#unit > 0) {
      // Inside an atomic unit: its end commits instead.
      this.#kickAfterUnit = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#due = false;
    const batch = this.#pending;
    this.#pending = new Batch();
    this.#inflight = batch;
    const started = performance.now();
    const data = batch.toData();
    const done = backend.call({ op: "commit", arg: data });
    const blocked = performance.now() - started;
    this.#stats.blockedMs += blocked;
    this.#stats.maxBlockedMs = Math.max(this.#stats.maxBlockedMs, blocked);
    done.then(
      () => {
        this.#inflight = null;
        this.#stats.commits++;
        this.#stats.mutations += batch.ops;
        this.#stats.commitMs += performance.now() - started;
        if (this.#lastError) this.#log.info(`store: commits to ${this.path} work again`);
        this.#lastError = null;
        this.#failures = 0;
        batch.resolve();
        this.#next();
      },
      (e: Error) => {
        this.#inflight = null;
        this.#stats.failedCommits++;
        this.#failures++;
        const err = new Error(
          `store: commit of ${batch.ops} mutation(s) to ${this.path} failed ` +
            `(attempt ${this.#failures}, will retry): ${e.message}`,
          { cause: e },
        );
        this.#lastError = err;
        this.#log.error(err.message);
        // Retried before the newer mutations, which may depend on it (e.g. a later removal).
        this.#pending.prepend(data);
        batch.reject(err);
        this.#next();
      },
    );
  }

  /** Decides when the batch that accumulated during a commit is committed. */
  #next(): void {
    const p = this.#pending;
    if (p.empty || !this.#backend) return;
    if (this.#lastError) {
      const ms = Math.min(this.#opts.commitIntervalMs * 2 ** this.#failures, MAX_RETRY_MS);
      this.#arm(Math.max(ms, 10));
    } else if (p.awaited || this.#due || p.ops >= this.#opts.maxBatchOps) {
      this.#kick();
    } else if (this.#timer === undefined) {
      this.#arm(this.#opts.commitIntervalMs);
    }
  }

  /** Commits everything issued so far; rejects if a commit fails. */
  async #drain(): Promise<void> {
    if (!this.#backend) throw new Error("the SQLite store is not open");
    for (;;) {
      if (this.#inflight) {
        await this.#inflight.promise();
        continue;
      }
      if (this.#pending.empty) return;
      const p = this.#pending.promise();
      this.#kick();
      await p;
    }
  }

  #call(call: Call): Promise<unknown> {
    if (!this.#backend) return Promise.reject(new Error("the SQLite store is not open"));
    return this.#backend.call(call);
  }
}

class InlineBackend implements Backend {
  #handler = new Handler();

  call(call: Call): Promise<unknown> {
    try {
      return Promise.resolve(this.#handler.handle(call));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  terminate(): void {
    try {
      this.#handler.handle({ op: "close" });
    } catch { /* already closed */ }
  }
}

class WorkerBackend implements Backend {
  #worker: Worker;
  #calls = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  #nextId = 1;
  #dead: Error | null = null;

  constructor() {
    this.#worker = new Worker(new URL("./sqlite_worker.ts", import.meta.url), { type: "module" });
    this.#worker.onmessage = (e: MessageEvent<Response>) => {
      const res = e.data;
      const c = this.#calls.get(res.id);
      if (!c) return;
      this.#calls.delete(res.id);
      if (res.ok) c.resolve(res.value);
      else c.reject(Object.assign(new Error(res.message), res.code ? { code: res.code } : {}));
    };
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#fail(new Error(`the SQLite store worker crashed: ${e.message}`));
    };
  }

  call(call: Call): Promise<unknown> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#calls.set(id, { resolve, reject });
      this.#worker.postMessage({ id, ...call });
    });
  }

  terminate(): void {
    this.#worker.terminate();
    this.#fail(new Error("the SQLite store is closed"));
  }

  #fail(e: Error): void {
    this.#dead = e;
    for (const c of this.#calls.values()) c.reject(e);
    this.#calls.clear();
  }
}
