/**
 * This node's lease on its sessions, by the local monotonic clock, with its fencing token.
 *
 * Every accepted heartbeat extends the lease to (when it was sent) + 0.9 × node-timeout: the
 * heartbeat key it refreshed cannot expire, and no survivor can take this node over, before
 * then. A node that was paused (GC, SIGSTOP, a stalled VM) finds its lease lapsed on the next
 * check, before any acknowledgement (every commit waits on `valid()`) and on a timer: it then
 * renews it first. A renewal Redis refuses (the epoch moved: another node took this one over)
 * fences it: the link drops its clients and sessions and rejoins under a new epoch.
 */
import { type Fence, FENCED } from "../redis/fence.ts";

const STOPPED = "this node is stopping; its lease lapsed and is not renewed";

/** The local part of the lease; renewing and fencing are the link's. */
export class Lease implements Fence {
  /** The fencing token presented with every write ("0" until joined). */
  epoch = "0";
  #deadline = 0;
  #fenced = false;
  #closed = false;
  #waiters: { resolve: (e: string) => void; reject: (e: Error) => void }[] = [];

  constructor(
    readonly key: string,
    private readonly nodeTimeoutMs: number,
    /** Asks for a heartbeat now (the lease lapsed). */
    private readonly renew: () => void,
    /** Redis refused a write of this node's: it was fenced. */
    private readonly onFenced: (why: string) => void,
  ) {}

  /** Monotonic milliseconds. */
  static now(): number {
    return performance.now();
  }

  /**
   * Whether the lease is valid by the local clock (and the node is not fenced). The clock is read
   * once per synchronous run of the event loop, not once per forwarded QoS 1 message: reading it
   * was 2.6% of a forwarding node's thread. A run is as long as the work it does, and what it
   * forwards leaves at the end of the turn anyway.
   */
  get held(): boolean {
    if (this.#fenced) return false;
    if (this.#heldThisRun) return true;
    if (!(Lease.now() < this.#deadline)) return false;
    this.#heldThisRun = true;
    queueMicrotask(this.#endRun);
    return true;
  }

  /** `held` found the lease valid in the run now going on. */
  #heldThisRun = false;
  readonly #endRun = () => {
    this.#heldThisRun = false;
  };

  /** Milliseconds since the lease lapsed (0 while it holds). */
  get lapsedFor(): number {
    return Math.max(0, Lease.now() - this.#deadline);
  }

  get fenced(): boolean {
    return this.#fenced;
  }

  /** The node is stopping: nothing renews the lease any more. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether the node has taken an epoch (it writes nothing under "0"). */
  get joined(): boolean {
    return this.epoch !== "0";
  }

  valid(): Promise<string> | string {
    if (this.held) return this.epoch;
    if (this.#fenced) return Promise.reject(new Error(`${FENCED}: this node was taken over`));
    if (this.#closed) return Promise.reject(new Error(STOPPED));
    const { promise, resolve, reject } = Promise.withResolvers<string>();
    this.#waiters.push({ resolve, reject });
    // Before the node has joined, a heartbeat would go out under epoch "0" and be refused by an
    // earlier run's epoch (fencing a node that holds nothing yet): the first heartbeat of the
    // join resolves the wait instead. One heartbeat for all waiters (a burst of publishes after
    // a pause must not send one each); the link's lease timer repeats it if it fails.
    if (this.joined && this.#waiters.length === 1) this.renew();
    return promise;
  }

  /**
   * Nothing while the lease holds; otherwise `valid()`'s promise. For work a node whose lease
   * lapsed must not start (reading its stream, delivering, acknowledging, taking over): what it
   * would touch may be another node's by now.
   */
  whenHeld(): Promise<string> | undefined {
    if (this.held) return undefined;
    return this.valid() as Promise<string>;
  }

  /** A heartbeat sent at `sentAt` (Lease.now()) under the current epoch was accepted. */
  renewed(sentAt: number): void {
    if (this.#fenced) return;
    this.#deadline = Math.max(this.#deadline, sentAt + Math.floor(this.nodeTimeoutMs * 0.9));
    if (!this.held) return;
    const w = this.#waiters;
    this.#waiters = [];
    for (const x of w) x.resolve(this.epoch);
  }

  /** Redis refused a write or heartbeat of this node (see isFenced). */
  refused(why: string): void {
    this.onFenced(why);
  }

  /** The node is fenced: every waiting and later write is refused until `rejoined`. */
  fence(): void {
    this.#fenced = true;
    this.#deadline = 0;
    const w = this.#waiters;
    this.#waiters = [];
    const err = new Error(`${FENCED}: this node was taken over`);
    for (const x of w) x.reject(err);
  }

  /**
   * The node is stopping and renews its lease no more: whatever waits for a valid lease (a read
   * loop, a commit) is refused now and from now on, instead of waiting for a heartbeat that
   * never comes (a node paused just before it was told to stop hung in its stop).
   */
  close(): void {
    this.#closed = true;
    const w = this.#waiters;
    this.#waiters = [];
    const err = new Error(STOPPED);
    for (const x of w) x.reject(err);
  }

  /** Joined (again) under `epoch`; the lease starts with the next accepted heartbeat. */
  rejoined(epoch: string): void {
    this.epoch = epoch;
    this.#fenced = false;
  }
}
