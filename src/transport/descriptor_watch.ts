/**
 * Recovery from running out of file descriptors.
 *
 * When accept fails with EMFILE/ENFILE, the runtime's native listener (Deno 2.x, node:net and
 * the bare handles alike) stops accepting for good and says nothing: connections pile up in the
 * kernel's backlog. Asking the handle to listen again restarts its accept loop. The socket
 * budget keeps the listeners' own sockets from exhausting the descriptors, but anything else in
 * the process (store, Redis, Kafka, a file) can still use the last one; so once a second the
 * watch checks that a descriptor can be had, logs when it cannot, and when descriptors come
 * back it restarts every listener and logs that too.
 */
import type { Logger } from "../log.ts";

/** A listener that can restart its accept loop. */
export interface Rearmable {
  /** Restarts accepting (safe on a listener that never stopped). */
  rearm(): void;
}

/** Milliseconds between checks. */
const CHECK_INTERVAL_MS = 1000;

/**
 * Quiet time after the last alert before the listeners are restarted: descriptors of shed
 * sockets are freed within a moment, and restarting only once the burst is over keeps restarts
 * (which may drop a connection being accepted at that instant) to one per burst.
 */
const QUIET_MS = 1000;

/** Whether a descriptor can be had right now; the reason when it cannot. */
function probeDescriptor(): string | null {
  try {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    l.close();
    return null;
  } catch (err) {
    const e = err as Error & { code?: string };
    const msg = e.message ?? String(err);
    // Only running out counts; anything else (permissions, no loopback) says nothing about it.
    return /EMFILE|ENFILE|Too many open files/i.test(`${e.code ?? ""} ${msg}`) ? msg : null;
  }
}

/** The running watch. */
export interface DescriptorWatch {
  /**
   * Tells the watch that a listener may have stopped: an accept failed, or sockets were shed
   * (closing a shed socket completes later, so a burst can use the last descriptors meanwhile).
   * The watch then restarts the listeners on its next few checks that find descriptors free.
   */
  alert(): void;
  /** Runs one check now (the timer does this every second). */
  check(): void;
  close(): void;
}

/**
 * Starts watching; `listeners()` gives the listeners to restart when descriptors come back.
 * `probe` (tests) replaces the real check.
 */
export function watchDescriptors(
  listeners: () => Iterable<Rearmable>,
  log: Logger,
  probe: () => string | null = probeDescriptor,
): DescriptorWatch {
  let exhaustedAt = 0;
  /** When the last alert came; 0 once the listeners were restarted for it. */
  let alertedAt = 0;
  const rearmAll = () => {
    for (const l of listeners()) {
      try {
        l.rearm();
      } catch (err) {
        log.error(`cannot restart a listener: ${(err as Error).message}`);
      }
    }
  };
  const check = () => {
    let failure: string | null;
    try {
      failure = probe();
    } catch (err) {
      failure = null;
      log.error(`descriptor check failed: ${(err as Error).message}`);
    }
    if (failure !== null) {
      if (exhaustedAt === 0) {
        exhaustedAt = Date.now();
        log.error(
          `out of file descriptors (${failure}): new connections wait until some are closed; ` +
            "raise `ulimit -n` or lower mqttwk.broker.max-connections",
        );
      }
      return;
    }
    if (exhaustedAt !== 0) {
      const seconds = ((Date.now() - exhaustedAt) / 1000).toFixed(1);
      exhaustedAt = 0;
      alertedAt = 0;
      log.warn(`file descriptors available again after ${seconds} s; restarting the listeners`);
      rearmAll();
      return;
    }
    if (alertedAt === 0 || Date.now() - alertedAt < QUIET_MS) return;
    alertedAt = 0;
    log.info("restarting the listeners after a burst of shed or failed connections");
    rearmAll();
  };
  const timer = setInterval(check, CHECK_INTERVAL_MS);
  // The watch alone must not keep the process alive after shutdown.
  Deno.unrefTimer(timer);
  return {
    alert() {
      alertedAt = Date.now();
    },
    check,
    close() {
      clearInterval(timer);
    },
  };
}
