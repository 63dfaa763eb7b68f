/** Requests from SqliteStore to the thread that owns the SQLite connection. */
import type { BatchData } from "./sqlite_batch.ts";
import { type DbMemory, type DbOptions, SqliteDb } from "./sqlite_db.ts";

export type Call =
  | { op: "open"; arg: DbOptions }
  | { op: "commit"; arg: BatchData }
  | { op: "loadSessions"; arg?: undefined }
  | { op: "loadSession"; arg: string }
  | { op: "loadRetained"; arg?: undefined }
  | { op: "deleteExpired"; arg: number }
  | { op: "memory"; arg?: undefined }
  | { op: "close"; arg?: undefined };

export type Request = { id: number } & Call;

export type Response =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; message: string; code?: string };

/** What the thread that owns the connection holds: its isolate's memory and SQLite's. */
export interface ThreadMemory {
  thread: Deno.MemoryUsage;
  /** After a full collection: only with --v8-flags=--expose-gc, which diagnosis may add. */
  live?: Deno.MemoryUsage;
  db: DbMemory;
}

/** This isolate's memory as it stands and, when a collection can be forced, what is live. */
export function threadMemory(): { thread: Deno.MemoryUsage; live?: Deno.MemoryUsage } {
  const thread = Deno.memoryUsage();
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return { thread };
  gc();
  return { thread, live: Deno.memoryUsage() };
}

/** Executes calls against one connection; shared by the worker and the in-thread mode. */
export class Handler {
  #db: SqliteDb | null = null;

  handle(call: Call): unknown {
    if (call.op === "open") {
      this.#db?.close();
      this.#db = new SqliteDb(call.arg);
      return undefined;
    }
    const db = this.#db;
    if (!db) throw new Error("the SQLite store is not open");
    switch (call.op) {
      case "commit":
        return db.commit(call.arg);
      case "loadSessions":
        return db.loadSessions();
      case "loadSession":
        return db.loadSession(call.arg);
      case "loadRetained":
        return db.loadRetained();
      case "deleteExpired":
        return db.deleteExpiredSessions(call.arg);
      case "memory":
        return { ...threadMemory(), db: db.memory() } satisfies ThreadMemory;
      case "close":
        this.#db = null;
        db.close();
        return undefined;
    }
  }
}
