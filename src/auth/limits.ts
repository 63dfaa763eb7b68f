/** Per-address connection rate limiting and the back-off for repeated authentication failures. */

/**
 * The IP part of a remote address: "1.2.3.4:5", "[::1]:5" and "::1:5" (no brackets, as Deno
 * reports IPv6 peers) all lose the port; IPv4-mapped IPv6 becomes plain IPv4, so one host cannot
 * get two budgets.
 */
export function ipOf(address: string): string {
  // "1.2.3.4:5", what nearly every connection has: one slice, no regular expression.
  const colon = ipv4PortColon(address);
  if (colon > 0) return address.slice(0, colon);
  let host = address;
  const bracket = /^\[([^\]]*)\](?::\d+)?$/.exec(address);
  if (bracket) host = bracket[1];
  else {
    const i = address.lastIndexOf(":");
    if (i > 0 && /^\d+$/.test(address.slice(i + 1))) host = address.slice(0, i);
  }
  host = host.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(host);
  return mapped ? mapped[1] : host;
}

/** Where the port starts in "d.d.d.d:port" (digits and dots, then digits), else -1. */
function ipv4PortColon(address: string): number {
  let colon = -1;
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i);
    if (c === 58 /* : */) {
      if (colon >= 0) return -1;
      colon = i;
    } else if (!(c >= 48 && c <= 57) && !(c === 46 /* . */ && colon < 0)) return -1;
  }
  return colon < address.length - 1 ? colon : -1;
}

type Clock = () => number;

const MAX_TRACKED = 10_000;

/**
 * Token bucket per address: `burst` connections at once, refilled at `ratePerSecond`. Idle,
 * full buckets are forgotten so the map stays small without a timer.
 */
export class ConnectionRateLimiter {
  #buckets = new Map<string, { tokens: number; at: number }>();
  #lastSweep: number;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    private readonly now: Clock = Date.now,
  ) {
    this.#lastSweep = now();
  }

  /** Takes a token for the address; false when it has none left. */
  take(ip: string): boolean {
    const now = this.now();
    this.#sweep(now);
    const b = this.#buckets.get(ip) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.ratePerSecond);
    b.at = now;
    this.#buckets.set(ip, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  get size(): number {
    return this.#buckets.size;
  }

  #sweep(now: number): void {
    const refillMs = (this.burst / this.ratePerSecond) * 1000;
    if (now - this.#lastSweep < Math.max(1000, refillMs)) return;
    this.#lastSweep = now;
    for (const [ip, b] of this.#buckets) {
      if (now - b.at >= refillMs) this.#buckets.delete(ip);
    }
  }
}

/**
 * Remembers recent authentication failures per address as a score that halves every
 * `halfLifeMs`; the delay before the next attempt's answer doubles with each failure, from
 * `baseMs` up to `maxMs`. Success does not reset it, or one valid account would let an attacker
 * wipe the penalty between guesses.
 */
export class FailureBackoff {
  #scores = new Map<string, { score: number; at: number }>();

  constructor(
    readonly maxMs: number,
    readonly baseMs = 100,
    readonly halfLifeMs = 30_000,
    private readonly now: Clock = Date.now,
  ) {}

  #current(ip: string, now: number): number {
    const e = this.#scores.get(ip);
    if (!e) return 0;
    return e.score * 0.5 ** ((now - e.at) / this.halfLifeMs);
  }

  /** Milliseconds to wait before answering this address's next attempt. */
  delayFor(ip: string): number {
    if (this.maxMs <= 0) return 0;
    const s = this.#current(ip, this.now());
    // Below half a failure the address is forgiven; above it the delay shrinks smoothly.
    if (s < 0.5) return 0;
    return Math.min(this.maxMs, Math.round(this.baseMs * 2 ** (s - 1)));
  }

  failed(ip: string): void {
    if (this.maxMs <= 0) return;
    const now = this.now();
    const score = this.#current(ip, now) + 1;
    this.#scores.delete(ip); // re-inserted last, so iteration order is oldest failure first
    this.#scores.set(ip, { score, at: now });
    if (this.#scores.size > MAX_TRACKED) {
      // Under a spread-out attack forget the oldest addresses rather than grow without bound.
      for (const [k] of this.#scores) {
        if (this.#scores.size <= MAX_TRACKED * 0.9) break;
        this.#scores.delete(k);
      }
    }
  }
}

/**
 * True for 127.0.0.0/8 and ::1 (after ipOf, so IPv4-mapped forms count too): a local reverse
 * proxy, the bench and the tests all arrive from there, and per-address limits would lump every
 * client behind a local proxy into one budget.
 */
export function isLoopback(ip: string): boolean {
  return ip === "::1" || /^127\.\d+\.\d+\.\d+$/.test(ip);
}

/**
 * One authentication at a time per address, so the failure back-off applies to the address as
 * a whole: N parallel guesses wait N delays, not one. At most `maxPending` attempts per address
 * (the running one included); beyond that `run` refuses at once instead of queueing, so an
 * address cannot hold an unbounded number of sockets in the queue.
 */
export class AttemptQueue {
  #queues = new Map<string, { tail: Promise<unknown>; pending: number }>();

  constructor(readonly maxPending: number) {}

  /** Runs `fn` after the address's earlier attempts settle; undefined when its queue is full. */
  run<T>(ip: string, fn: () => Promise<T>): Promise<T> | undefined {
    const q = this.#queues.get(ip) ?? { tail: Promise.resolve(), pending: 0 };
    if (q.pending >= this.maxPending) return undefined;
    q.pending++;
    this.#queues.set(ip, q);
    const result = q.tail.then(fn);
    // The chain must go on after a rejection, and the entry go once the queue is empty, so an
    // address costs nothing after its last attempt.
    q.tail = result.then(noop, noop).finally(() => {
      if (--q.pending === 0 && this.#queues.get(ip) === q) this.#queues.delete(ip);
    });
    return result;
  }

  /** Attempts waiting or running for the address. */
  pending(ip: string): number {
    return this.#queues.get(ip)?.pending ?? 0;
  }

  /** Addresses with attempts waiting or running. */
  get size(): number {
    return this.#queues.size;
  }
}

function noop(): void {}
