/** Requests from SqliteStore to the thread that owns the SQLite connection. */
import type { BatchData } from "./sqlite_batch.ts";
import { type DbOptions, SqliteDb } from "./sqlite_db.ts";

export type Call =
  | { op: "open"; arg: DbOptions }
  | { op: "commit"; arg: BatchData }
  | { op: "loadSessions"; arg?: undefined }
  | { op: "loadSession"; arg: string }
  | { op: "loadRetained"; arg?: undefined }
  | { op: "deleteExpired"; arg: number }
  | { op: "close"; arg?: undefined };

export type Request = { id: number } & Call;

export type Response =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; message: string; code?: string };

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
      case "close":
        this.#db = null;
        db.close();
        return undefined;
    }
  }
}
