/**
 * The store as /health and /metrics see it: degraded while commits fail (a full disk), the free
 * space of the data directory's file system, and a warning before it runs out.
 */
import { statfsSync } from "node:fs";
import type { Logger } from "../log.ts";
import type { Store } from "../broker/ports/store.ts";
import type { HealthSource } from "../metrics/http.ts";

/** How often free space is read. */
const POLL_MS = 5_000;
/** While below the threshold, the warning is repeated this often. */
const REPEAT_MS = 300_000;

/** The store's health source and, for a directory on disk, a free-space watch to stop. */
export interface StoreHealth {
  source: HealthSource;
  stop(): void;
}

/** Free bytes for unprivileged writers on the file system holding `dir`, or null. */
export function freeBytes(dir: string): number | null {
  try {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return null;
  }
}

/**
 * Watches `store` (and, with `dir`, the free space there: a warning line below `warnBytes`,
 * 0 = no warning). /health is degraded while commits fail, with the store's reason.
 */
export function watchStore(
  store: Store,
  dir: string | null,
  warnBytes: number,
  log: Logger,
): StoreHealth {
  let free: number | null = dir === null ? null : freeBytes(dir);
  let warnedAt = -Infinity;
  const check = () => {
    if (dir === null) return;
    free = freeBytes(dir);
    if (free === null || warnBytes <= 0) return;
    const now = Date.now();
    if (free < warnBytes) {
      if (now - warnedAt >= REPEAT_MS) {
        warnedAt = now;
        log.warn(
          `store: only ${mib(free)} MiB free on the file system of ${dir} (warning below ` +
            `${
              mib(warnBytes)
            } MiB, mqttwk.broker.disk-free-warn-bytes); when it is full, QoS 1/2 ` +
            `publishes and new persistent sessions are refused until space is freed`,
        );
      }
    } else if (warnedAt !== -Infinity) {
      warnedAt = -Infinity;
      log.info(`store: ${mib(free)} MiB free on the file system of ${dir} again`);
    }
  };
  check();
  const timer = dir === null ? undefined : setInterval(check, POLL_MS);
  if (timer !== undefined) Deno.unrefTimer(timer);
  return {
    source: {
      name: "store",
      healthy: () => store.failure() === null,
      reason: () => store.failure(),
      metrics: () => ({
        ...(free !== null ? { free_bytes: free } : {}),
        failing: store.failure() === null ? 0 : 1,
      }),
    },
    stop: () => clearInterval(timer),
  };
}

function mib(n: number): string {
  return (n / 1048576).toFixed(1);
}
