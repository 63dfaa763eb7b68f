/**
 * Shared acknowledgements of stream entries (XACK + XDEL), for every read of every stream this
 * node delivers. An entry is acknowledged only once its messages are safe elsewhere (see
 * forwarding.ts): the caller hands its ids over when that is so, and they wait here for one
 * store flush, a valid lease and one MULTI, together with every other read that became ready
 * meanwhile. While one MULTI is on its way the next reads' ids gather for the following one, so
 * a busy node sends one MULTI per Redis round trip rather than one per read (each cost both
 * nodes and Redis a socket write and five commands), and an idle one sends its first at once.
 * Light traffic (one read per few messages, each read acknowledged alone before the next is
 * ready) is what costs most per message, so MULTIs are also at least GAP_MS apart: the reads of
 * those milliseconds share one. Only the acknowledgement waits; delivery goes on meanwhile.
 */
import type { LinkContext } from "./context.ts";

/** Ids per XACK/XDEL command (a MULTI may hold several). */
const IDS_PER_COMMAND = 512;
/**
 * Own stream entries delivered but not yet acknowledged, at most (their held deliveries wait for
 * their subscribers): eight full reads of 64. Counted in entries, not reads, so light traffic (a
 * read per entry, each waiting for its subscribers' acks) does not stall delivery behind a few
 * slow acknowledgements.
 */
export const MAX_UNACKED = 8 * 64;
/**
 * Reads of the own stream not yet acknowledged, at most: room for the reads of a few
 * acknowledgement gaps at light load, while a saturated node (small reads, one per round trip)
 * still waits for its subscribers before it delivers far ahead of them.
 */
export const MAX_ACK_READS = 32;
/** Least time between two MULTIs (see the file comment). */
export const GAP_MS = 2;

interface Pending {
  key: string;
  ids: string[];
  done: PromiseWithResolvers<void>;
}

/** Batches the XACK + XDEL of stream entries whose messages are safe; see the file comment. */
export class StreamAcks {
  #pending: Pending[] = [];
  #sending = false;
  /** When the last MULTI was sent (performance.now()). */
  #lastSent = -Infinity;
  /** MULTIs sent and reads they acknowledged (diagnostics, tests). */
  sent = 0;
  reads = 0;

  constructor(private readonly ctx: LinkContext, private readonly group: string) {}

  /**
   * Acknowledges and deletes entries `ids` of stream `key` once the store has committed what is
   * queued now and the lease is valid; resolves when Redis answered (rejects if it failed: the
   * entries stay pending, to be read again or drained by a takeover).
   */
  ack(key: string, ids: string[]): Promise<void> {
    const done = Promise.withResolvers<void>();
    this.#pending.push({ key, ids, done });
    if (!this.#sending) {
      this.#sending = true;
      const wait = this.#lastSent + GAP_MS - performance.now();
      if (wait > 0) setTimeout(() => this.#send(), wait);
      else this.#send();
    }
    return done.promise;
  }

  /** Sends what is pending, and what becomes pending meanwhile, one MULTI after another. */
  async #send(): Promise<void> {
    try {
      while (this.#pending.length) {
        const wait = this.#lastSent + GAP_MS - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const batch = this.#pending;
        this.#pending = [];
        try {
          // Queue entries for persistent sessions must be durable before the stream forgets
          // them, and only a node still holding its lease may forget them (a fenced one
          // delivered them to sessions that are owned elsewhere now). The flush starts after
          // every read of the batch was delivered, so it covers what they queued.
          await this.ctx.store.flush();
          await this.ctx.lease.valid();
          this.#lastSent = performance.now();
          const multi = this.ctx.cmd.multi();
          for (const [key, ids] of byKey(batch)) {
            for (let i = 0; i < ids.length; i += IDS_PER_COMMAND) {
              const some = ids.slice(i, i + IDS_PER_COMMAND);
              multi.xack(key, this.group, ...some).xdel(key, ...some);
            }
          }
          await multi.exec();
          this.sent++;
          this.reads += batch.length;
          for (const p of batch) p.done.resolve();
        } catch (e) {
          for (const p of batch) p.done.reject(e);
        }
      }
    } finally {
      this.#sending = false;
    }
  }
}

/** The ids of `batch` per stream, in the order they were handed over. */
function byKey(batch: Pending[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const p of batch) {
    const ids = m.get(p.key);
    if (ids) ids.push(...p.ids);
    else m.set(p.key, p.ids.slice());
  }
  return m;
}

/**
 * Promises not yet settled, and who waits for none to be left: a count, not a Promise.all over
 * them per addition (that cost each read of the own stream allocations for every read in flight).
 */
export class Unsettled {
  #count = 0;
  #waiters: (() => void)[] = [];

  /** Counts `p` until it settles (either way). */
  add(p: Promise<unknown>): void {
    this.#count++;
    const settled = () => {
      if (--this.#count > 0) return;
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const w of waiters) w();
    };
    p.then(settled, settled);
  }

  /** Resolves once every promise added so far (and meanwhile) has settled. */
  none(): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((r) => this.#waiters.push(r));
  }
}
