/** How many client connections the process can afford under its open-file limit. */
import type { Config } from "../config/load.ts";
import type { Logger } from "../log.ts";

/**
 * File descriptors kept back for listeners, store, Redis/Kafka clients, workers and up to 100
 * connections being refused with CONNACK 0x03: refusing cleanly beats EMFILE.
 */
const RESERVED_FDS = 400;

/** The process's open-file limit (ulimit -n), or null when it cannot be read. */
export function openFileLimit(): number | null {
  try {
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const m = limits.match(/Max open files\s+(\d+)/);
    if (m) return Number(m[1]);
  } catch {
    // Deno lets only --allow-all read /proc/self; a child shell inherits the same limit.
  }
  try {
    const out = new Deno.Command("sh", { args: ["-c", "ulimit -n"], stderr: "null" }).outputSync();
    const n = Number(new TextDecoder().decode(out.stdout).trim());
    return Number.isSafeInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** The connection limit actually used, and the open-file limit it was checked against. */
export interface ConnectionBudget {
  maxConnections: number;
  fileLimit: number | null;
}

/** Lowers `max-connections` (with a warning) when the open-file limit cannot carry it. */
export function connectionBudget(
  config: Config,
  log: Logger,
  fileLimit: number | null = openFileLimit(),
): ConnectionBudget {
  let maxConnections = config.maxConnections;
  if (fileLimit !== null && maxConnections > fileLimit - RESERVED_FDS) {
    maxConnections = Math.max(1, fileLimit - RESERVED_FDS);
    log.warn(
      `max-connections ${config.maxConnections} exceeds the open-file limit ${fileLimit}; ` +
        `using ${maxConnections}`,
    );
  }
  return { maxConnections, fileLimit };
}
