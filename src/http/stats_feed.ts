/**
 * The once-a-second sample behind `GET /api/v1/stats/stream`: one timer and one (cluster-wide)
 * gathering for all open streams together, running only while a stream is open. The number of
 * open streams is bounded.
 */
import type { Operations } from "./ops.ts";
import type { StreamOut } from "./server.ts";

/** One event of the stream. */
export interface StatsSample {
  t: number;
  connections: number;
  messagesInPerSec: number;
  messagesOutPerSec: number;
  droppedPerSec: number;
  sessions: number;
  retained: number;
}

/** Open streams at most; more are refused with 503. */
export const MAX_STREAMS = 64;

/** Feeds every open stream one sample per second. */
export class StatsFeed {
  readonly #ops: Operations;
  readonly #streams = new Set<StreamOut>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #last: { t: number; in: number; out: number; dropped: number } | null = null;
  #busy = false;

  constructor(ops: Operations, readonly intervalMs = 1000) {
    this.#ops = ops;
  }

  get open(): number {
    return this.#streams.size;
  }

  /** Adds a stream; false when MAX_STREAMS are open already. */
  add(out: StreamOut): boolean {
    if (this.#streams.size >= MAX_STREAMS) return false;
    this.#streams.add(out);
    out.onClose(() => {
      this.#streams.delete(out);
      if (this.#streams.size === 0) this.#stop();
    });
    // A first event at once, so a dashboard shows numbers without waiting a second.
    this.#sample([out]);
    this.#timer ??= setInterval(() => this.#sample([...this.#streams]), this.intervalMs);
    return true;
  }

  /** Ends every stream (the app stops). */
  close(): void {
    for (const s of [...this.#streams]) s.close();
    this.#stop();
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #sample(to: StreamOut[]): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const nodes = await this.#ops.nodes();
      const t = Date.now();
      const sum = (f: (n: (typeof nodes)[number]) => number) => nodes.reduce((a, n) => a + f(n), 0);
      const now = {
        t,
        in: sum((n) => n.messagesIn),
        out: sum((n) => n.messagesOut),
        dropped: sum((n) => n.dropped),
      };
      const last = this.#last;
      const secs = last ? Math.max(0.001, (t - last.t) / 1000) : 1;
      const rate = (a: number, b: number | undefined) =>
        last && b !== undefined ? Math.max(0, Math.round(((a - b) / secs) * 10) / 10) : 0;
      const sample: StatsSample = {
        t,
        connections: sum((n) => n.connections),
        messagesInPerSec: rate(now.in, last?.in),
        messagesOutPerSec: rate(now.out, last?.out),
        droppedPerSec: rate(now.dropped, last?.dropped),
        // Sessions are shared in a cluster: counted on the node holding them.
        sessions: sum((n) => n.sessions),
        retained: nodes.length ? Math.max(...nodes.map((n) => n.retained)) : 0,
      };
      if (!last || t - last.t >= this.intervalMs / 2) this.#last = now;
      const text = `data: ${JSON.stringify(sample)}\n\n`;
      for (const s of to) s.write(text);
    } catch {
      // A gathering that failed (Redis away) skips one event; the stream stays open.
    } finally {
      this.#busy = false;
    }
  }
}
