/**
 * Measures how long the event loop was blocked: a timer that should fire every `periodMs` notes
 * how late it fired. A node whose loop is blocked for about a heartbeat period risks its lease
 * (and so a takeover by the others), so such stalls are logged, and a takeover reports the
 * longest stall while it ran (loading large backlogs must not cause one).
 */
export class StallMonitor {
  #timer: ReturnType<typeof setInterval> | undefined;
  #last = 0;
  readonly #windows = new Set<{ longest: number }>();

  constructor(
    private readonly periodMs: number,
    /** Called for a stall of at least `warnMs`. */
    private readonly onStall: (ms: number) => void,
    private readonly warnMs: number,
  ) {}

  start(): void {
    if (this.#timer !== undefined) return;
    this.#last = performance.now();
    this.#timer = setInterval(() => this.#tick(), this.periodMs);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Starts a measurement window; the returned function ends it and gives its longest stall. */
  window(): () => number {
    const w = { longest: 0 };
    this.#windows.add(w);
    return () => {
      this.#windows.delete(w);
      return Math.round(Math.max(w.longest, this.#pendingStall()));
    };
  }

  /** How late the timer is right now (a stall still going on when a window ends). */
  #pendingStall(): number {
    return Math.max(0, performance.now() - this.#last - this.periodMs);
  }

  #tick(): void {
    const now = performance.now();
    const stall = Math.max(0, now - this.#last - this.periodMs);
    this.#last = now;
    for (const w of this.#windows) if (stall > w.longest) w.longest = stall;
    if (stall >= this.warnMs) this.onStall(Math.round(stall));
  }
}
