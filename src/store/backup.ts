/**
 * Online backup of the SQLite store: a consistent copy taken while the broker runs.
 *
 * `VACUUM INTO` on a read-only connection of its own: in WAL mode a reader sees one committed
 * state (a snapshot) and never blocks the broker's writer, which keeps committing meanwhile.
 * The copy is a compact, self-contained database (no -wal), checked before it is reported.
 * Used by `deno task backup` (scripts/backup.ts); an HTTP endpoint can call backupStore() too.
 */
import { DatabaseSync, type DatabaseSyncOptions } from "node:sqlite";
import { join } from "node:path";
import { DB_FILE } from "./sqlite_db.ts";

/** What a backup holds, from the copy itself. */
export interface BackupResult {
  dest: string;
  bytes: number;
  ms: number;
  sessions: number;
  outbound: number;
  retained: number;
}

/** Copies the store in `dataDir` to `dest` (which must not exist) and checks the copy. */
export function backupStore(dataDir: string, dest: string): BackupResult {
  const source = join(dataDir, DB_FILE);
  try {
    Deno.statSync(source);
  } catch {
    throw new Error(`no MqttWk store at ${source} (is the data directory right?)`);
  }
  let exists = true;
  try {
    Deno.statSync(dest);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    exists = false;
  }
  if (exists) throw new Error(`${dest} exists already; choose a new file name`);
  const started = performance.now();
  // VACUUM INTO attaches the destination: node:sqlite allows no attached database by default.
  // (`limits` is in Deno's node:sqlite, not yet in its type declarations.)
  const opts = { readOnly: true, limits: { attach: 1 } } as DatabaseSyncOptions;
  const db = new DatabaseSync(source, opts);
  try {
    db.exec("PRAGMA busy_timeout = 10000");
    db.prepare("VACUUM INTO ?").run(dest);
  } finally {
    db.close();
  }
  const copy = new DatabaseSync(dest, { readOnly: true });
  try {
    const check = copy.prepare("PRAGMA quick_check").get() as Record<string, unknown>;
    if (Object.values(check)[0] !== "ok") {
      throw new Error(`the copy at ${dest} failed its integrity check: ${Object.values(check)[0]}`);
    }
    const count = (table: string) =>
      Number((copy.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n);
    return {
      dest,
      bytes: Deno.statSync(dest).size,
      ms: Math.round(performance.now() - started),
      sessions: count("sessions"),
      outbound: count("outbound"),
      retained: count("retained"),
    };
  } finally {
    copy.close();
  }
}
