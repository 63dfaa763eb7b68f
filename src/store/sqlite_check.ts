/**
 * What the SQLite store checks before it trusts its file, and the start-up errors that say what
 * to do: a damaged file (integrity check), a missing or empty file that this data directory's
 * marker says was created, a full disk, a file that is not a store.
 */
import type { DatabaseSync } from "node:sqlite";

/** How thoroughly the file is checked when opened (`mqttwk.broker.store-integrity-check`). */
export type IntegrityCheck = "quick" | "full" | "off";

/** Whether an error means the disk (or the file's quota) is full, not that the file is bad. */
export function isDiskFull(e: unknown): boolean {
  const m = e instanceof Error ? `${e.message} ${(e as { code?: string }).code ?? ""}` : String(e);
  return /disk is full|SQLITE_FULL|No space left|ENOSPC|quota/i.test(m);
}

/**
 * Runs PRAGMA quick_check (or integrity_check) and throws a "damaged" error naming the file and
 * the ways out if it finds anything. quick_check reads every page and checks the b-trees but not
 * that indexes match their tables; it is what catches garbled pages.
 */
export function checkIntegrity(db: DatabaseSync, path: string, mode: IntegrityCheck): void {
  if (mode === "off") return;
  const pragma = mode === "full" ? "integrity_check(20)" : "quick_check(20)";
  let rows: Record<string, unknown>[];
  try {
    rows = db.prepare(`PRAGMA ${pragma}`).all() as Record<string, unknown>[];
  } catch (e) {
    if (isDiskFull(e)) throw e;
    throw damaged(path, (e as Error).message);
  }
  const problems = rows.map((r) => String(Object.values(r)[0]));
  if (problems.length === 1 && problems[0] === "ok") return;
  throw damaged(path, problems.slice(0, 5).join("; "));
}

function damaged(path: string, what: string): Error {
  return new Error(
    `The MqttWk store file ${path} is damaged (integrity check: ${what}). The broker will not ` +
      `start on it: a damaged store loses messages silently and every later commit can fail. ` +
      `Recovery, best first: stop the broker and restore the latest backup over it (backups are ` +
      `made with \`deno task backup <dest>\`); or salvage what is readable with ` +
      `\`sqlite3 ${path} .recover | sqlite3 ${path}.recovered\` and move that into place; or ` +
      `move ${path} (with ${path}-wal and ${path}-shm) aside to start with an empty store, ` +
      `losing its sessions, queues and retained messages.`,
  );
}

/** The error for a file that cannot be opened or used, with the way out that fits the cause. */
export function unusable(path: string, cause: unknown): Error {
  const why = cause instanceof Error ? cause.message : String(cause);
  if (cause instanceof Error && cause.message.startsWith(`The MqttWk store file ${path}`)) {
    return cause;
  }
  if (isDiskFull(cause)) {
    return new Error(
      `Cannot open the MqttWk store file ${path}: the disk (or quota) holding it is full ` +
        `(${why}). The file itself is not known to be damaged: do NOT move it aside. Free ` +
        `space on that file system (or grow it), then start again.`,
      { cause },
    );
  }
  if (/readonly|read-only|permission denied|access/i.test(why)) {
    return new Error(
      `Cannot open the MqttWk store file ${path}: ${why}. Give the broker's user read and ` +
        `write access to it, to ${path}-wal and ${path}-shm and to their directory, then start ` +
        `again.`,
      { cause },
    );
  }
  return new Error(
    `Cannot use the MqttWk store file ${path}: ${why}. The broker will not start with an empty ` +
      `store over it. Stop the broker, move ${path} (with ${path}-wal and ${path}-shm if present) ` +
      `aside or restore it from a backup, then start again; a missing file is created empty.`,
    { cause },
  );
}

/** The marker next to the database that says a store was created in this directory. */
export const MARKER_FILE = "mqttwk.db.created";

/**
 * Refuses to start over a missing or empty database file when the marker says one was created
 * here (a lost volume, a bad copy): starting empty would silently drop every queued message.
 * Returns true when the store is new (no marker, no file), so the caller writes the marker once
 * the file exists.
 */
export function checkPresence(path: string, markerPath: string): boolean {
  const size = fileSize(path);
  let marker: string | null = null;
  try {
    marker = Deno.readTextFileSync(markerPath).trim();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (size !== null && size > 0) return marker === null;
  if (marker === null) return true;
  const state = size === null ? "is missing" : "is empty (0 bytes)";
  throw new Error(
    `The MqttWk store file ${path} ${state}, but ${markerPath} says a store was created here ` +
      `(${marker}). Starting empty would drop every session, queued and retained message. ` +
      `Restore the store from a backup (\`deno task backup <dest>\` makes one) or check that the ` +
      `right volume is mounted. To start with an empty store on purpose, delete ${markerPath}.`,
  );
}

/** Writes the marker (once, when a store is created in this directory). */
export function writeMarker(markerPath: string, path: string): void {
  Deno.writeTextFileSync(markerPath, `created ${new Date().toISOString()} for ${path}\n`);
}

function fileSize(path: string): number | null {
  try {
    return Deno.statSync(path).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}
