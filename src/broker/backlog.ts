/**
 * Loading a large queue after its session was resumed (a session moved here in a cluster, or a
 * dead node's taken over). The session is usable at once: its CONNACK does not wait for tens of
 * thousands of queued messages to be read and decoded, which would also block the event loop
 * for seconds (long enough for a cluster node to miss its lease). Instead the loader reads the
 * stored queue one page at a time, oldest first, only while the client drains what is ready
 * (Delivery.pump asks for more), yielding between pages. Messages queued for the session
 * meanwhile wait behind the backlog (Session.backlog), so the order per publisher is kept; a
 * cluster takeover may also add the dead node's stream backlog (`tail`) and ends it with `close`.
 */
import type { Logger } from "../log.ts";
import type { OutboundEntry, QueueRest } from "./model.ts";
import { BACKLOG_LOW, type Session } from "./session.ts";

/** Stream-backlog entries moved into the ready queue at once. */
const TAIL_PAGE = 1000;
/** The loader re-checks its session at least this often while it waits (ms). */
const RECHECK_MS = 1000;

export interface BacklogDeps {
  log: Logger;
  /** Sends what is ready (Delivery.pump). */
  pump(s: Session): void;
  /** Whether `s` is still the session held here (not released, ended or abandoned). */
  current(s: Session): boolean;
  /** Whether its client may still read queued entry `e` (else it is dropped from the store). */
  readable?(s: Session, e: OutboundEntry): boolean;
}

/** Loads the backlogs of resumed sessions page by page (see the file comment). */
export class BacklogLoader {
  readonly #d: BacklogDeps;
  /** Sessions whose stream backlog may still grow (a takeover is draining it), by session. */
  readonly #open = new Set<Session>();
  #active = 0;

  constructor(deps: BacklogDeps) {
    this.#d = deps;
  }

  /** Sessions loading a backlog now (for tests and metrics). */
  get active(): number {
    return this.#active;
  }

  /**
   * Starts loading `rest` into `s` (restored with the oldest page). `open`: a takeover will add
   * the dead node's stream backlog and then call `close`.
   */
  start(s: Session, rest: QueueRest | null, open: boolean): void {
    if (rest === null && !open) return;
    if (rest !== null && rest.lastSeq >= s.nextSeq) s.nextSeq = rest.lastSeq + 1;
    s.backlog = { tail: [], waiting: [], wake: null };
    if (open) this.#open.add(s);
    this.#active++;
    this.#run(s, rest).finally(() => this.#active--);
  }

  /** The stream backlog meant for `s` is complete. */
  close(s: Session): void {
    if (!this.#open.delete(s)) return;
    const b = s.backlog;
    if (b?.wake) {
      const w = b.wake;
      b.wake = null;
      w();
    }
  }

  async #run(s: Session, rest: QueueRest | null): Promise<void> {
    const d = this.#d;
    let failures = 0;
    while (s.backlog !== null && d.current(s)) {
      const b = s.backlog;
      const room = s.readyLength < BACKLOG_LOW;
      if (room && rest !== null && rest.remaining > 0) {
        let page: OutboundEntry[];
        try {
          page = await rest.next();
          failures = 0;
        } catch (e) {
          if (failures++ % 20 === 0) {
            d.log.warn(`session ${s.clientId}: reading its queued messages: ${e}; retrying`);
          }
          await wait(Math.min(50 * 2 ** Math.min(failures, 5), RECHECK_MS));
          continue;
        }
        if (s.backlog !== b || !d.current(s)) return;
        this.#add(s, page);
      } else if (room && b.tail.length > 0 && (rest === null || rest.remaining === 0)) {
        s.takeTail(TAIL_PAGE);
      } else if (!this.#open.has(s) && b.tail.length === 0 && (rest?.remaining ?? 0) === 0) {
        s.endBacklog();
        d.pump(s);
        return;
      } else {
        // Nothing to do until the client drains (pump) or the takeover's drain ends (close).
        let timer: ReturnType<typeof setTimeout> | undefined;
        await new Promise<void>((r) => {
          b.wake = r;
          timer = setTimeout(r, RECHECK_MS);
        });
        clearTimeout(timer);
        b.wake = null;
        continue;
      }
      d.pump(s);
      // One page per turn: timers, heartbeats and other clients run between pages.
      await wait(0);
    }
    this.#open.delete(s);
  }

  /**
   * A page of the stored queue. In-flight entries normally come first (in the first page,
   * restored with the session); one found later is sent again as a queued message (at least
   * once), unless its PUBREL was sent (QoS 2), which is finished under its own packet id.
   */
  #add(s: Session, page: OutboundEntry[]): void {
    const ready: OutboundEntry[] = [];
    for (const e of page) {
      if (e.state === "released" && e.packetId && !s.inflight.has(e.packetId)) {
        s.setInflight(e.packetId, e);
        continue;
      }
      if (this.#d.readable && !this.#d.readable(s, e)) continue;
      if (e.state !== "queued") {
        e.state = "queued";
        delete e.packetId;
      }
      ready.push(e);
    }
    s.enqueueReady(ready);
  }
}

function wait(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
