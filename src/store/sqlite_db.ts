/**
 * The synchronous SQLite side of the SQLite store: schema, prepared statements, batch commits
 * and loads. Runs inside the store worker (or on the calling thread with `worker: false`).
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { checkIntegrity, type IntegrityCheck, unusable } from "./sqlite_check.ts";
import { Buffer } from "node:buffer";
import {
  type BatchData,
  OUT_STRIDE,
  parseSubscriptionIds,
  PROPS_OFFSET,
  RETAINED_STRIDE,
} from "./sqlite_batch.ts";
import {
  EXPIRY_NEVER,
  type LoadedSession,
  type OutboundEntry,
  type SessionRecord,
  type StoredMessage,
  type SubscriptionRecord,
} from "../broker/model.ts";

export const DB_FILE = "mqttwk.db";
const FORMAT = "mqttwk-store";
/** 2: outbound.sub_ids (MQTT 5 Subscription Identifiers of a delivery). */
const VERSION = 2;
/** Free pages above which deletions are followed by an incremental vacuum (4 MiB at 4 KiB). */
const VACUUM_FREE_PAGES = 1024;

const STATES = ["queued", "sent", "released"] as const;

type Row = Record<string, unknown>;

export interface DbOptions {
  path: string;
  sync: boolean;
  /** A second connection for loads only, next to the writer that created the schema. */
  readOnly?: boolean;
  /** Checked before anything is written (default quick). */
  integrityCheck?: IntegrityCheck;
}

/** Where an open store's bytes are, for diagnosing its memory. */
export interface DbMemory {
  /** The page cache limit (PRAGMA cache_size, converted to KiB). */
  cacheLimitKiB: number;
  /** Bytes of the file SQLite may map (PRAGMA mmap_size); mapped pages count in RSS. */
  mmapBytes: number;
  pageSize: number;
  pageCount: number;
  freelistCount: number;
  /** Size of the -wal file; 0 when there is none. */
  walBytes: number;
}

export class SqliteDb {
  #db: DatabaseSync;
  #path: string;
  #readOnly: boolean;
  #st!: Record<
    | "putSession"
    | "delSession"
    | "delSubs"
    | "delOut"
    | "delIn"
    | "putSub"
    | "delSub"
    | "putOut"
    | "delOutOne"
    | "putIn"
    | "delInOne"
    | "putRetained"
    | "delRetained",
    StatementSync
  >;

  /** Throws an Error naming the file and the way out when the file is not a usable store. */
  constructor(opts: DbOptions) {
    this.#readOnly = opts.readOnly ?? false;
    this.#path = opts.path;
    try {
      this.#db = new DatabaseSync(opts.path, { readOnly: opts.readOnly ?? false });
    } catch (e) {
      throw unusable(opts.path, e);
    }
    try {
      if (opts.readOnly) this.#db.exec("PRAGMA busy_timeout = 5000");
      else this.#init(opts.sync, opts.integrityCheck ?? "quick");
    } catch (e) {
      try {
        this.#db.close();
      } catch { /* already failing; the first error is the useful one */ }
      throw unusable(opts.path, e);
    }
  }

  #init(sync: boolean, check: IntegrityCheck): void {
    const db = this.#db;
    // Reads the header first: garbage files fail here, before anything is written.
    db.exec("PRAGMA schema_version");
    // Validate before any PRAGMA that writes: a foreign file must be left untouched.
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all() as {
      name: string;
    }[];
    const names = new Set(tables.map((t) => t.name));
    if (names.size > 0 && !names.has("meta")) {
      throw new Error("the file is an SQLite database but not an MqttWk store");
    }
    if (names.has("meta")) {
      const rows = db.prepare("SELECT key, value FROM meta").all() as Row[];
      const meta = new Map(rows.map((r) => [r.key, r.value]));
      if (meta.get("format") !== FORMAT) throw new Error("the file is not an MqttWk store");
      const v = Number(meta.get("version"));
      if (v > VERSION) {
        throw new Error(
          `store format version ${v} is newer than this broker supports (${VERSION})`,
        );
      }
    }

    // Damage found now refuses the start; found later, every commit would fail.
    if (names.size > 0) checkIntegrity(db, this.#path, check);

    // Only effective before the first table exists, i.e. when the file is created.
    db.exec("PRAGMA auto_vacuum = INCREMENTAL");
    const mode = db.prepare("PRAGMA journal_mode = WAL").get() as Row | undefined;
    if (String(mode?.journal_mode).toLowerCase() !== "wal") {
      throw new Error(`cannot switch to WAL mode (got ${String(mode?.journal_mode)})`);
    }
    db.exec(`PRAGMA synchronous = ${sync ? "FULL" : "NORMAL"}`);
    // Bounds the WAL file left behind after checkpoints; it would otherwise keep its peak size.
    db.exec("PRAGMA journal_size_limit = 67108864");
    db.exec("PRAGMA busy_timeout = 5000");

    db.exec(`
      BEGIN;
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
      INSERT OR IGNORE INTO meta VALUES ('format', '${FORMAT}'), ('version', ${VERSION});
      CREATE TABLE IF NOT EXISTS sessions (
        client_id TEXT PRIMARY KEY,
        expiry_interval INTEGER NOT NULL,
        disconnected_at INTEGER,
        protocol_version INTEGER NOT NULL,
        will TEXT,
        node TEXT
      );
      CREATE TABLE IF NOT EXISTS subscriptions (
        client_id TEXT NOT NULL,
        filter TEXT NOT NULL,
        qos INTEGER NOT NULL,
        no_local INTEGER,
        retain_as_published INTEGER,
        retain_handling INTEGER,
        subscription_id INTEGER,
        PRIMARY KEY (client_id, filter)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS outbound (
        client_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        qos INTEGER NOT NULL,
        retain INTEGER NOT NULL,
        state INTEGER NOT NULL,
        packet_id INTEGER,
        ${MSG_COLUMNS},
        sub_ids TEXT,
        PRIMARY KEY (client_id, seq)
      );
      CREATE TABLE IF NOT EXISTS inbound_qos2 (
        client_id TEXT NOT NULL,
        packet_id INTEGER NOT NULL,
        PRIMARY KEY (client_id, packet_id)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS retained (
        topic TEXT PRIMARY KEY,
        ${MSG_COLUMNS}
      );
      COMMIT;
    `);
    // Version 1 stores gain the column version 2 added (appended, as in a new table).
    const cols = db.prepare("PRAGMA table_info(outbound)").all() as { name: string }[];
    if (!cols.some((c) => c.name === "sub_ids")) {
      db.exec("ALTER TABLE outbound ADD COLUMN sub_ids TEXT");
    }
    db.prepare("UPDATE meta SET value = ? WHERE key = 'version'").run(VERSION);

    const p = (sql: string) => db.prepare(sql);
    this.#st = {
      putSession: p(
        "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
      ),
      delSession: p("DELETE FROM sessions WHERE client_id = ?"),
      delSubs: p("DELETE FROM subscriptions WHERE client_id = ?"),
      delOut: p("DELETE FROM outbound WHERE client_id = ?"),
      delIn: p("DELETE FROM inbound_qos2 WHERE client_id = ?"),
      putSub: p("INSERT OR REPLACE INTO subscriptions VALUES (?, ?, ?, ?, ?, ?, ?)"),
      delSub: p("DELETE FROM subscriptions WHERE client_id = ? AND filter = ?"),
      putOut: p(
        "INSERT OR REPLACE INTO outbound VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      delOutOne: p("DELETE FROM outbound WHERE client_id = ? AND seq = ?"),
      putIn: p("INSERT OR IGNORE INTO inbound_qos2 VALUES (?, ?)"),
      delInOne: p("DELETE FROM inbound_qos2 WHERE client_id = ? AND packet_id = ?"),
      putRetained: p("INSERT OR REPLACE INTO retained VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
      delRetained: p("DELETE FROM retained WHERE topic = ?"),
    };
  }

  /** Applies a whole batch in one transaction: all of it or, on error, none of it. */
  commit(d: BatchData): void {
    const st = this.#st;
    this.#transaction(() => {
      for (const id of d.deletedClients) this.#deleteClient(id);
      for (const s of d.sessions) {
        st.putSession.run(
          s.clientId,
          s.expiryInterval,
          s.disconnectedAt,
          s.protocolVersion,
          s.will ? encodeJson(willColumn(s)) : null,
          s.node ?? null,
        );
      }
      for (const [id, s] of d.subPuts) {
        st.putSub.run(
          id,
          s.filter,
          s.qos,
          bool(s.noLocal),
          bool(s.retainAsPublished),
          s.retainHandling ?? null,
          s.subscriptionId ?? null,
        );
      }
      const pairs = (a: (string | number)[], stmt: StatementSync) => {
        for (let i = 0; i < a.length; i += 2) stmt.run(a[i], a[i + 1]);
      };
      pairs(d.subRemovals, st.delSub);
      const out = d.outPuts;
      for (let i = 0; i < out.length; i += OUT_STRIDE) {
        // A copy: with worker: false the caller keeps `d` to retry it if this commit fails.
        const row = out.slice(i, i + OUT_STRIDE);
        const p = 6 + PROPS_OFFSET;
        if (row[p] !== null) row[p] = encodeJson(row[p]);
        st.putOut.run(...(row as SqlValue[]));
      }
      pairs(d.outRemovals, st.delOutOne);
      pairs(d.inAdds, st.putIn);
      pairs(d.inRemovals, st.delInOne);
      const ret = d.retainedPuts;
      for (let i = 0; i < ret.length; i += RETAINED_STRIDE) {
        const row = ret.slice(i, i + RETAINED_STRIDE);
        const p = 1 + PROPS_OFFSET;
        if (row[p] !== null) row[p] = encodeJson(row[p]);
        st.putRetained.run(...(row as SqlValue[]));
      }
      for (const t of d.retainedRemovals) st.delRetained.run(t);
    });
  }

  loadSessions(): LoadedSession[] {
    const byId = new Map<string, LoadedSession>();
    for (const r of this.#db.prepare("SELECT * FROM sessions").all() as Row[]) {
      const s = sessionFromRow(r);
      byId.set(s.clientId, { session: s, subscriptions: [], outbound: [], inboundQos2: [] });
    }
    for (const r of this.#db.prepare("SELECT * FROM subscriptions").all() as Row[]) {
      byId.get(r.client_id as string)?.subscriptions.push(subFromRow(r));
    }
    // Primary-key order, so every session's list comes out sorted by seq.
    const out = this.#db.prepare("SELECT * FROM outbound ORDER BY client_id, seq");
    for (const r of out.iterate() as Iterable<Row>) {
      byId.get(r.client_id as string)?.outbound.push(entryFromRow(r));
    }
    for (const r of this.#db.prepare("SELECT * FROM inbound_qos2").all() as Row[]) {
      byId.get(r.client_id as string)?.inboundQos2.push(r.packet_id as number);
    }
    return [...byId.values()];
  }

  loadSession(clientId: string): LoadedSession | null {
    const db = this.#db;
    const r = db.prepare("SELECT * FROM sessions WHERE client_id = ?").get(clientId) as
      | Row
      | undefined;
    if (!r) return null;
    return {
      session: sessionFromRow(r),
      subscriptions: (db.prepare("SELECT * FROM subscriptions WHERE client_id = ?").all(
        clientId,
      ) as Row[]).map(subFromRow),
      outbound: (db.prepare("SELECT * FROM outbound WHERE client_id = ? ORDER BY seq").all(
        clientId,
      ) as Row[]).map(entryFromRow),
      inboundQos2: (db.prepare("SELECT packet_id FROM inbound_qos2 WHERE client_id = ?").all(
        clientId,
      ) as Row[]).map((x) => x.packet_id as number),
    };
  }

  loadRetained(): StoredMessage[] {
    const rows = this.#db.prepare("SELECT * FROM retained").all() as Row[];
    return rows.map(messageFromRow);
  }

  deleteExpiredSessions(now: number): string[] {
    const ids = (this.#db.prepare(
      `SELECT client_id FROM sessions WHERE disconnected_at IS NOT NULL
         AND expiry_interval <> ${EXPIRY_NEVER} AND disconnected_at + expiry_interval * 1000 <= ?`,
    ).all(now) as Row[]).map((r) => r.client_id as string);
    if (ids.length === 0) return ids;
    this.#transaction(() => {
      for (const id of ids) this.#deleteClient(id);
    });
    this.maintain();
    return ids;
  }

  /**
   * Gives freed pages back to the file system and truncates the WAL, so that a burst of
   * expiries or a drained backlog does not leave the files at their peak size for ever.
   */
  maintain(): void {
    const free = this.#db.prepare("PRAGMA freelist_count").get() as Row;
    if (Number(free.freelist_count) >= VACUUM_FREE_PAGES) {
      // Frees one page per step; exec() would only take the first step.
      this.#db.prepare("PRAGMA incremental_vacuum").all();
      this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    }
  }

  /** The connection's share of memory and the files' sizes. */
  memory(): DbMemory {
    const pragma = (name: string) =>
      Number(Object.values(this.#db.prepare(`PRAGMA ${name}`).get()!)[0]);
    const pageSize = pragma("page_size");
    const cache = pragma("cache_size");
    let walBytes = 0;
    try {
      walBytes = Deno.statSync(`${this.#path}-wal`).size;
    } catch { /* no WAL file */ }
    return {
      // A negative cache_size is a limit in KiB, a positive one in pages.
      cacheLimitKiB: cache < 0 ? -cache : cache * pageSize / 1024,
      mmapBytes: pragma("mmap_size"),
      pageSize,
      pageCount: pragma("page_count"),
      freelistCount: pragma("freelist_count"),
      walBytes,
    };
  }

  close(): void {
    if (!this.#db.isOpen) return;
    try {
      // Leaves a single file behind when this is the last connection.
      if (!this.#readOnly) this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } finally {
      this.#db.close();
    }
  }

  #deleteClient(id: string): void {
    this.#st.delSession.run(id);
    this.#st.delSubs.run(id);
    this.#st.delOut.run(id);
    this.#st.delIn.run(id);
  }

  #transaction(fn: () => void): void {
    this.#db.exec("BEGIN");
    try {
      fn();
      this.#db.exec("COMMIT");
    } catch (e) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw e;
    }
  }
}

// --- row mapping ---------------------------------------------------------------------------

const MSG_COLUMNS = `
  msg_id TEXT NOT NULL,
  msg_topic TEXT NOT NULL,
  payload BLOB NOT NULL,
  msg_qos INTEGER NOT NULL,
  msg_retain INTEGER NOT NULL,
  properties TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  origin TEXT`;

type SqlValue = string | number | null | Uint8Array;

function messageFromRow(r: Row): StoredMessage {
  const m: StoredMessage = {
    id: r.msg_id as string,
    topic: r.msg_topic as string,
    payload: r.payload as Uint8Array,
    qos: r.msg_qos as StoredMessage["qos"],
    retain: r.msg_retain === 1,
    createdAt: r.created_at as number,
  };
  if (r.properties !== null) m.properties = decodeJson(r.properties as string);
  if (r.expires_at !== null) m.expiresAt = r.expires_at as number;
  if (r.origin !== null) m.origin = r.origin as string;
  return m;
}

function entryFromRow(r: Row): OutboundEntry {
  const e: OutboundEntry = {
    seq: r.seq as number,
    message: messageFromRow(r),
    qos: r.qos as OutboundEntry["qos"],
    retain: r.retain === 1,
    state: STATES[r.state as number],
  };
  if (r.packet_id !== null) e.packetId = r.packet_id as number;
  if (r.sub_ids !== null) e.subscriptionIds = parseSubscriptionIds(r.sub_ids as string);
  return e;
}

function sessionFromRow(r: Row): SessionRecord {
  const s: SessionRecord = {
    clientId: r.client_id as string,
    expiryInterval: r.expiry_interval as number,
    disconnectedAt: r.disconnected_at as number | null,
    protocolVersion: r.protocol_version as SessionRecord["protocolVersion"],
  };
  if (r.will !== null) {
    const { dueAt, username, ...will } = decodeJson(r.will as string) as WillColumn;
    s.will = will;
    if (dueAt !== undefined) s.willDueAt = dueAt;
    if (username !== undefined) s.username = username;
  }
  if (r.node !== null) s.node = r.node as string;
  return s;
}

/**
 * The `will` column: the will, and beside its fields when the record has them, when a delayed
 * will is due and whose it is (a delayed will is published after a restart, authorized as that
 * user). Rows written before these existed hold the will alone and read the same.
 */
type WillColumn = NonNullable<SessionRecord["will"]> & { dueAt?: number; username?: string };

function willColumn(s: SessionRecord): WillColumn {
  const c: WillColumn = { ...s.will! };
  if (s.willDueAt !== undefined) c.dueAt = s.willDueAt;
  if (s.username !== undefined) c.username = s.username;
  return c;
}

function subFromRow(r: Row): SubscriptionRecord {
  const s: SubscriptionRecord = {
    filter: r.filter as string,
    qos: r.qos as SubscriptionRecord["qos"],
  };
  if (r.no_local !== null) s.noLocal = r.no_local === 1;
  if (r.retain_as_published !== null) s.retainAsPublished = r.retain_as_published === 1;
  if (r.retain_handling !== null) s.retainHandling = r.retain_handling as 0 | 1 | 2;
  if (r.subscription_id !== null) s.subscriptionId = r.subscription_id as number;
  return s;
}

function bool(b: boolean | undefined): number | null {
  return b === undefined ? null : b ? 1 : 0;
}

/** JSON that keeps Uint8Array values (correlation data, will payloads) byte-exact. */
export function encodeJson(v: unknown): string {
  // Reads the raw value from the holder: a Buffer's toJSON() has already run on `x`.
  return JSON.stringify(v, function (this: Record<string, unknown>, k: string, x: unknown) {
    const raw = this[k];
    return raw instanceof Uint8Array ? { $u8: Buffer.from(raw).toString("base64") } : x;
  });
}

export function decodeJson<T>(s: string): T {
  return JSON.parse(s, (_k, x) => {
    if (x !== null && typeof x === "object" && typeof x.$u8 === "string") {
      return new Uint8Array(Buffer.from(x.$u8, "base64"));
    }
    return x;
  });
}
