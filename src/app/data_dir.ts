/**
 * The data directory check at start-up: a directory this process cannot write (typically a
 * root-owned host directory bind-mounted into the Docker image, which runs as uid 1000) gets one
 * clear line naming the path and the chown that fixes it, instead of a stack trace from deep in
 * the store.
 */
import type { Config } from "../config/load.ts";

/** Whether this configuration keeps anything in the data directory (the node id, the database). */
export function usesDataDir(config: Config): boolean {
  if (config.persistence !== "sqlite") return false;
  return !config.clusterOn || !config.nodeId;
}

/**
 * Creates the data directory if needed and proves it writable by creating and removing a file.
 * Throws an Error whose message names the absolute path, this process's uid and the fix.
 */
export async function checkDataDir(dir: string): Promise<void> {
  const probe = `${dir}/.mqttwk-write-check-${Deno.pid}`;
  try {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(probe, "");
    await Deno.remove(probe);
  } catch (err) {
    if (!isAccessError(err)) throw err;
    const path = absolute(dir);
    const uid = processUid();
    const who = uid === null ? "this process" : `uid ${uid}`;
    throw new Error(
      `data directory ${path} (mqttwk.broker.data-dir) is not writable by ${who}: ` +
        `${(err as Error).message}. Make it writable, e.g. \`chown -R ${uid ?? "<uid>"} ${path}\`` +
        ` (for a Docker bind mount, run that on the host directory mounted at ${path})` +
        `, or choose another directory`,
    );
  }
}

/** EACCES/EPERM, and a read-only file system (EROFS), which Deno reports without its own class. */
function isAccessError(err: unknown): boolean {
  if (err instanceof Deno.errors.PermissionDenied) return true;
  const code = (err as { code?: unknown })?.code;
  return code === "EACCES" || code === "EPERM" || code === "EROFS" ||
    /os error 30\b/.test(String((err as Error)?.message));
}

function absolute(dir: string): string {
  if (dir.startsWith("/")) return dir;
  const rel = dir.replace(/^\.\/+/, "");
  const cwd = Deno.cwd();
  return rel === "" || rel === "." ? cwd : `${cwd.replace(/\/$/, "")}/${rel}`;
}

/** Null where the OS has no uids (Windows) or the sys permission is missing. */
function processUid(): number | null {
  try {
    return Deno.uid();
  } catch {
    return null;
  }
}
