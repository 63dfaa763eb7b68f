/**
 * The egress pipeline: a bounded buffer of records, drained by one loop that sends whatever has
 * accumulated as a single produce request, so records published in the same few milliseconds
 * share a round trip and nothing awaits Kafka per message. Only the loop talks to Kafka; the
 * publish path just appends, which keeps MQTT working whatever state Kafka is in.
 */
import type { SinkDone } from "../../broker/ports/sink.ts";
import type { Logger } from "../../log.ts";
import { type BridgeRecord, recordLabel, releaseRecord } from "./records.ts";
import { describe, type EgressCounters, EgressReport } from "./egress_report.ts";

/** What the pipeline needs from a Kafka producer (the producer thread, a fake in tests). */
export interface ProducerLink {
  connect(): Promise<void>;
  /** Resolves once Kafka acknowledged every record (per the configured acks). */
  send(records: BridgeRecord[]): Promise<void>;
  disconnect(): Promise<void>;
}

export interface EgressOptions {
  maxMessages: number;
  maxBytes: number;
  lingerMs: number;
  /** Pending bytes that end the linger early. */
  batchBytes: number;
  maxRequestBytes: number;
  backoffMs: number;
  backoffMaxMs: number;
  /** A fresh producer per connection attempt, so a broken one never lingers. */
  createProducer: () => ProducerLink;
  /** Classifies a send failure: true = the records can never be stored (drop, don't retry). */
  isPermanent: (err: unknown) => boolean;
  log: Logger;
  /** Where Kafka is, for log lines. */
  target: string;
  /** Milliseconds between "still down / dropping" summaries. */
  reportEveryMs?: number;
  /**
   * Produce requests sent before the first is answered (default 1). More let the next batch be
   * on its way while Kafka works on one; they are still answered and acknowledged in order.
   */
  maxInFlight?: number;
}

/**
 * Settles an at-least-once record: with nothing (stored) or with the error (refused, or given
 * up). The broker's reused SinkDone (MessageSink.acceptThen), or one around a promise for
 * offer(): not a promise and a resolve/reject pair per record: thousands wait at a time, and
 * every object they hold is copied by each young-generation collection while Kafka works.
 */
type Settle = SinkDone;

/** One produce request on its way; `done` settles with null (stored) or the error. */
interface Flight {
  /** Its records, and their Settles (undefined: nothing waits), oldest first. */
  recs: BridgeRecord[];
  settles: (Settle | undefined)[];
  bytes: number;
  /** The stop() generation it was sent in. */
  epoch: number;
  done: Promise<unknown>;
}

export class BufferFullError extends Error {
  override name = "BufferFullError";
}

export class Egress {
  readonly counters: EgressCounters = {
    produced: 0,
    dropped: 0,
    rejected: 0,
    failed: 0,
    abandoned: 0,
    batches: 0,
    connectFailures: 0,
  };
  readonly #o: EgressOptions;
  /** Queue with a moving head: shift() on a big array is O(n). */
  #q: BridgeRecord[] = [];
  /** Per queued record, its Settle (undefined: fire-and-forget), at the same index. */
  #settles: (Settle | undefined)[] = [];
  #head = 0;
  #bytes = 0;
  #producer: ProducerLink | null = null;
  #connected = false;
  #running = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #sleepTimer: ReturnType<typeof setTimeout> | undefined;
  /** Requests sent and not yet answered, oldest first; they hold the queue's first records. */
  #flights: Flight[] = [];
  /** Records (and their bytes) from the head of the queue that are in those requests. */
  #sent = 0;
  #sentBytes = 0;
  readonly #maxInFlight: number;
  /** Records to send one per request after a request was refused, to find the bad one. */
  #isolate = 0;
  /** Bumped when stop() gives up on the queue, so a late send result leaves it alone. */
  #epoch = 0;
  readonly #report: EgressReport;

  constructor(opts: EgressOptions) {
    this.#o = opts;
    this.#maxInFlight = Math.max(1, opts.maxInFlight ?? 1);
    this.#report = new EgressReport({
      log: opts.log,
      target: opts.target,
      everyMs: opts.reportEveryMs ?? 10_000,
      maxMessages: opts.maxMessages,
      maxBytes: opts.maxBytes,
    }, this);
  }

  /** Records waiting or in flight. */
  get buffered(): number {
    return this.#q.length - this.#head;
  }

  get bufferedBytes(): number {
    return this.#bytes;
  }

  get connected(): boolean {
    return this.#connected;
  }

  /**
   * Queues a record. With `wait`, returns a promise settled when Kafka has it (or rejected when
   * it cannot be buffered); without, never delays and drops the record when the buffer is full.
   */
  offer(rec: BridgeRecord, wait: boolean): void | Promise<void> {
    if (!wait) {
      this.offerThen(rec, undefined);
      return;
    }
    let settle: Settle | undefined;
    const p = new Promise<void>((resolve, reject) => {
      settle = { sinkDone: (err) => err === undefined ? resolve() : reject(err) };
    });
    this.offerThen(rec, settle);
    return p;
  }

  /**
   * offer() with a callback: with `settle`, it is called once Kafka has the record, or with the
   * error when it cannot be buffered or is refused; never before this returns (a refusal is
   * reported from a microtask). Without, never delays and drops the record when the buffer is
   * full.
   */
  offerThen(rec: BridgeRecord, settle: Settle | undefined): void {
    if (
      this.buffered + 1 > this.#o.maxMessages || this.#bytes + rec.bytes > this.#o.maxBytes ||
      !this.#running
    ) {
      if (settle === undefined) {
        this.counters.dropped++;
        this.#report.overflow();
        return;
      }
      this.counters.rejected++;
      this.#report.overflow();
      const err = new BufferFullError(this.#running ? "kafka buffer full" : "kafka bridge stopped");
      queueMicrotask(() => settle.sinkDone(err));
      return;
    }
    this.#bytes += rec.bytes;
    this.#q.push(rec);
    this.#settles.push(settle);
    const wake = this.#wake;
    if (wake) wake();
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#report.start();
    this.#loop = this.#run().catch((err) => {
      // Never expected; without the loop nothing reaches Kafka, so say so loudly.
      this.#o.log.error(`kafka egress stopped unexpectedly: ${err?.stack ?? err}`);
    });
  }

  /** Gives in-flight and buffered records up to `graceMs` to reach Kafka, then gives up on them. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.#running) return;
    const deadline = Date.now() + graceMs;
    while (this.buffered > 0 && this.#connected && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    this.#running = false;
    this.#report.stop();
    this.#wake?.();
    clearTimeout(this.#sleepTimer);
    this.#wakeSleep?.();
    // A send stuck on an unresponsive Kafka must not hold up shutdown for its full timeout;
    // closing the producer below fails it, and the loop then finds it was abandoned.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.#loop, new Promise((r) => timer = setTimeout(r, 2_000))]);
    clearTimeout(timer);
    this.#epoch++;
    const left = this.buffered;
    if (left > 0) {
      this.counters.abandoned += left;
      const err = new Error("kafka bridge stopped before the record reached Kafka");
      this.#settleAll(this.#settles, this.#head, this.#q.length, err);
      // Those in flight are among them: a late answer must not settle them a second time.
      for (const f of this.#flights) f.settles.fill(undefined);
      this.#q = [];
      this.#settles = [];
      this.#head = 0;
      this.#bytes = 0;
      this.#flights = [];
      this.#sent = 0;
      this.#sentBytes = 0;
      this.#o.log.warn(
        `kafka bridge stopped with ${left} records not delivered ` +
          `(at-least-once publishers were not acknowledged and will resend)`,
      );
    }
    await this.#dropProducer();
  }

  // ------------------------------------------------------------------ the loop

  async #run(): Promise<void> {
    let backoff = this.#o.backoffMs;
    while (this.#running) {
      // Connecting before the first record makes its latency normal and reports a missing
      // Kafka at start-up rather than at the first publish.
      if (!this.#connected) {
        try {
          await this.#connect();
          backoff = this.#o.backoffMs;
        } catch (err) {
          this.#noteDown(err, "cannot connect");
          await this.#sleep(jitter(backoff));
          backoff = Math.min(backoff * 2, this.#o.backoffMaxMs);
          continue;
        }
      }
      // Isolating a refused record goes one request at a time, so only that record fails.
      const cap = this.#isolate > 0 ? 1 : this.#maxInFlight;
      const unsent = this.buffered - this.#sent;
      if (unsent > 0 && this.#flights.length < cap) {
        await this.#linger();
        if (!this.#running) break;
        this.#launch();
        continue;
      }
      if (this.#flights.length === 0) {
        await new Promise<void>((r) => this.#wake = r);
        this.#wake = null;
        continue;
      }
      // Wait for the oldest request; or, while another may go out, also for new records.
      const f = this.#flights[0];
      if (unsent === 0 && this.#flights.length < cap) {
        const done = await Promise.race([
          f.done.then(() => true),
          new Promise<boolean>((r) => this.#wake = () => r(false)),
        ]);
        this.#wake = null;
        if (!done) continue;
      }
      const err = await f.done;
      if (f.epoch !== this.#epoch) {
        // stop() gave up on the queue: whatever Kafka took still counts for the publishers.
        if (err === null) this.#settleAll(f.settles, 0, f.settles.length);
        return;
      }
      if (err === null) {
        this.#flights.shift();
        this.counters.batches++;
        const n = f.recs.length;
        this.counters.produced += n;
        if (this.#isolate > 0) this.#isolate = Math.max(0, this.#isolate - n);
        this.#sent -= n;
        this.#sentBytes -= f.bytes;
        this.#remove(n);
        this.#settleAll(f.settles, 0, n);
        continue;
      }
      // A failed request: the later ones are let finish, and all of them go again (in order,
      // from the oldest); a later one that Kafka did store becomes a duplicate, which
      // at-least-once allows and idempotence mostly prevents.
      await Promise.all(this.#flights.map((x) => x.done));
      this.#flights = [];
      this.#sent = 0;
      this.#sentBytes = 0;
      if (f.epoch !== this.#epoch) return;
      if (this.#o.isPermanent(err)) {
        this.#refused(f, err);
        continue;
      }
      this.#noteDown(err, "send failed");
      // The client already retried inside send; a new producer starts from a clean connection
      // and producer id, which also sidesteps stale idempotence sequence numbers.
      await this.#dropProducer();
      await this.#sleep(jitter(backoff));
      backoff = Math.min(backoff * 2, this.#o.backoffMaxMs);
    }
  }

  /** Sends the next unsent records as one request, tracked until Kafka answers. */
  #launch(): void {
    const start = this.#head + this.#sent;
    const n = this.#takeCount(start);
    const recs = this.#q.slice(start, start + n);
    const settles = this.#settles.slice(start, start + n);
    let bytes = 0;
    for (const r of recs) bytes += r.bytes;
    this.#sent += n;
    this.#sentBytes += bytes;
    const done = this.#producer!.send(recs).then(
      () => null,
      (err: unknown) => err ?? new Error("send failed"),
    );
    this.#flights.push({ recs, settles, bytes, epoch: this.#epoch, done });
  }

  #noteDown(err: unknown, what: string): void {
    this.counters.connectFailures++;
    this.#report.down(err, what);
  }

  async #connect(): Promise<void> {
    const p = this.#o.createProducer();
    this.#producer = p;
    try {
      await p.connect();
    } catch (err) {
      this.#producer = null;
      await p.disconnect().catch(() => {});
      throw err;
    }
    this.#connected = true;
    this.#report.up();
  }

  async #dropProducer(): Promise<void> {
    const p = this.#producer;
    this.#producer = null;
    this.#connected = false;
    if (p) await p.disconnect().catch(() => {});
  }

  /**
   * Waits up to linger.ms for more records while Kafka works on an earlier request, unless a
   * batch' worth is already there. When Kafka has no request of ours (or answers the one being
   * waited behind), nothing is gained by waiting: the records that come meanwhile go in the next
   * request, which can follow at once. Waiting anyway cost every acknowledgement 1-2 ms (a 1 ms
   * timer), and kept the next request behind the answer, so that light traffic lingered on every
   * request. Under load a request is always on its way, so the linger still gathers the next one.
   */
  async #linger(): Promise<void> {
    const full = () => this.#bytes - this.#sentBytes >= this.#o.batchBytes;
    if (this.#o.lingerMs <= 0 || full() || this.#isolate > 0) return;
    const busy = this.#flights[this.#flights.length - 1];
    if (busy === undefined) return;
    let answered = false;
    const end = Date.now() + this.#o.lingerMs;
    while (this.#running && !full() && !answered && Date.now() < end) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, end - Date.now());
        this.#wake = () => {
          if (full()) {
            clearTimeout(t);
            r();
          }
        };
        busy.done.then(() => {
          answered = true;
          clearTimeout(t);
          r();
        });
      });
      this.#wake = null;
    }
  }

  /** How many queued records from `start` go into a request: all that fit in max.request.size. */
  #takeCount(start: number): number {
    if (this.#isolate > 0) return 1;
    let n = 0;
    let bytes = 0;
    for (let i = start; i < this.#q.length; i++) {
      const b = this.#q[i].bytes;
      if (n > 0 && bytes + b > this.#o.maxRequestBytes) break;
      bytes += b;
      n++;
    }
    return n;
  }

  #remove(n: number): void {
    // Only records whose request Kafka answered are removed, after their settles were taken:
    // nothing refers to them any more, so their MessageRefs go back for reuse.
    for (let i = this.#head; i < this.#head + n; i++) {
      this.#bytes -= this.#q[i].bytes;
      releaseRecord(this.#q[i]);
    }
    this.#head += n;
    if (this.#head === this.#q.length) {
      this.#q = [];
      this.#settles = [];
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > this.#q.length) {
      this.#q = this.#q.slice(this.#head);
      this.#settles = this.#settles.slice(this.#head);
      this.#head = 0;
    }
  }

  #refused(f: Flight, err: unknown): void {
    if (f.recs.length > 1) {
      // One bad record fails the whole request: resend these one by one to keep the good ones.
      this.#isolate = f.recs.length;
      return;
    }
    this.counters.failed++;
    if (this.#isolate > 0) this.#isolate--;
    const rec = f.recs[0];
    this.#o.log.warn(
      `kafka refused a record for ${rec.topic} (${recordLabel(rec)}, ` +
        `${rec.bytes} bytes) for good: ${describe(err)}`,
    );
    this.#settleAll(f.settles, 0, 1, new Error(`kafka refused the record: ${describe(err)}`));
    // Last: removing it hands the record back for reuse.
    this.#remove(1);
  }

  /**
   * Settles `settles[from..to)` (with `err`, or as stored). They are the broker's acknowledgements,
   * called right here on the egress loop: one that throws must neither stop the loop nor keep the
   * others from being settled.
   */
  #settleAll(
    settles: readonly (Settle | undefined)[],
    from: number,
    to: number,
    err?: Error,
  ): void {
    for (let i = from; i < to; i++) {
      const settle = settles[i];
      if (settle === undefined) continue;
      try {
        settle.sinkDone(err);
      } catch (e) {
        this.#o.log.error(`kafka bridge: acknowledging a record failed: ${describe(e)}`);
      }
    }
  }

  #wakeSleep: (() => void) | null = null;

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((r) => {
      this.#wakeSleep = r;
      this.#sleepTimer = setTimeout(r, ms);
    }).then(() => {
      this.#wakeSleep = null;
    });
  }
}

function jitter(ms: number): number {
  return Math.round(ms * (0.8 + Math.random() * 0.4));
}
