/**
 * Takes a consistent copy of the running (or stopped) broker's SQLite store.
 *
 *   deno task backup <dest> [--data-dir DIR]     DIR defaults to ./data (mqttwk.broker.data-dir)
 *
 * Safe while the broker runs and publishing goes on: the copy is one committed state of the
 * store (see src/store/backup.ts). To restore: stop the broker, copy <dest> to DIR/mqttwk.db
 * (removing DIR/mqttwk.db-wal and -shm), start it.
 */
import { backupStore } from "../src/store/backup.ts";

const USAGE = "usage: deno task backup <dest> [--data-dir DIR]";

function run(args: string[]): number {
  let dataDir = "./data";
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--data-dir") dataDir = args[++i] ?? "";
    else if (a.startsWith("--data-dir=")) dataDir = a.slice("--data-dir=".length);
    else rest.push(a);
  }
  if (rest.length !== 1 || !dataDir) {
    console.error(USAGE);
    return 2;
  }
  try {
    const r = backupStore(dataDir, rest[0]);
    console.log(
      `backup of ${dataDir} written to ${r.dest}: ${r.bytes} bytes in ${r.ms} ms, ` +
        `${r.sessions} sessions, ${r.outbound} queued/in-flight messages, ${r.retained} retained`,
    );
    return 0;
  } catch (e) {
    console.error(`backup failed: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(run(Deno.args));
