/**
 * What the egress tells the operator about Kafka being away and its buffer overflowing: the first
 * event at once, then a summary every `everyMs`, so an outage or a flood of dropped records costs
 * one log line per period rather than one per record.
 */
import type { Logger } from "../../log.ts";

export interface EgressCounters {
  /** Records Kafka acknowledged. */
  produced: number;
  /** Records dropped because the buffer was full (fire-and-forget, QoS 0, events). */
  dropped: number;
  /** At-least-once publishes refused because the buffer was full (left unacknowledged). */
  rejected: number;
  /** Records Kafka refused for good (e.g. too large); at-least-once ones left unacknowledged. */
  failed: number;
  /** Records still undelivered when the bridge stopped. */
  abandoned: number;
  /** Produce requests sent successfully. */
  batches: number;
  /** Times the connection to Kafka was lost or could not be made. */
  connectFailures: number;
}

/** The egress's state as the reports give it. */
export interface EgressState {
  readonly buffered: number;
  readonly bufferedBytes: number;
  readonly counters: EgressCounters;
}

export interface EgressReportOptions {
  log: Logger;
  /** Where Kafka is, for log lines. */
  target: string;
  /** Milliseconds between "still down / dropping" summaries. */
  everyMs: number;
  /** The buffer's limits, named in the first line of an outage. */
  maxMessages: number;
  maxBytes: number;
}

/** The egress's log lines about outages and overflow; see the file comment. */
export class EgressReport {
  #downSince = 0;
  #lastReport = 0;
  /** The counters' dropped and rejected at the last summary: what came since is the difference. */
  #dropped = 0;
  #rejected = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly o: EgressReportOptions, private readonly state: EgressState) {}

  /** Starts the periodic summaries. */
  start(): void {
    this.#timer ??= setInterval(() => this.#report(), this.o.everyMs);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Kafka could not be reached or a send failed (`what` says which). */
  down(err: unknown, what: string): void {
    if (this.#downSince) {
      this.o.log.debug(`kafka still unavailable (${what}: ${describe(err)})`);
      return;
    }
    this.#downSince = Date.now();
    this.#lastReport = Date.now();
    this.o.log.warn(
      `kafka ${this.o.target} unavailable (${what}: ${describe(err)}); MQTT goes on, ` +
        `${this.state.buffered} records (${this.state.bufferedBytes} bytes) buffered, up to ` +
        `${this.o.maxMessages} records / ${this.o.maxBytes} bytes`,
    );
  }

  /** A producer connected: after an outage, says how long it lasted and what is buffered. */
  up(): void {
    if (!this.#downSince) {
      this.o.log.info(`kafka producer connected to ${this.o.target}`);
      return;
    }
    const secs = ((Date.now() - this.#downSince) / 1000).toFixed(1);
    this.o.log.info(
      `kafka ${this.o.target} reachable again after ${secs} s; delivering ` +
        `${this.state.buffered} buffered records (${this.state.bufferedBytes} bytes)`,
    );
    this.#downSince = 0;
  }

  /** A record did not fit (the counters already count it as dropped or rejected). */
  overflow(): void {
    const c = this.state.counters;
    if (c.dropped - this.#dropped + c.rejected - this.#rejected !== 1) return;
    // The first loss is reported at once; the rest are summed up by #report.
    this.o.log.warn(
      `kafka buffer full (${this.state.buffered} records, ${this.state.bufferedBytes} bytes): ` +
        `dropping fire-and-forget and QoS 0 records, leaving at-least-once publishes ` +
        `unacknowledged`,
    );
    this.#lastReport = Date.now();
  }

  #report(): void {
    const c = this.state.counters;
    const buffered = this.state.buffered;
    const drops = c.dropped - this.#dropped;
    const rejects = c.rejected - this.#rejected;
    if (drops > 1 || rejects > 1) {
      this.o.log.warn(
        `kafka buffer full: ${drops} records dropped and ${rejects} at-least-once ` +
          `publishes refused since the last report (totals: ${c.dropped} dropped, ` +
          `${c.rejected} refused; ${buffered} buffered)`,
      );
    }
    this.#dropped = c.dropped;
    this.#rejected = c.rejected;
    if (this.#downSince && Date.now() - this.#lastReport >= this.o.everyMs) {
      const secs = Math.round((Date.now() - this.#downSince) / 1000);
      this.o.log.warn(
        `kafka ${this.o.target} still unavailable after ${secs} s: ${buffered} records ` +
          `(${this.state.bufferedBytes} bytes) buffered; totals ${c.dropped} dropped, ` +
          `${c.rejected} refused`,
      );
      this.#lastReport = Date.now();
    }
  }
}

/** An error's message, with its cause's when that says more. */
export function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error && cause.message !== err.message
      ? `${err.message} (${cause.message})`
      : err.message;
  }
  return String(err);
}
