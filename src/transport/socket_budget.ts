/**
 * One count of accepted sockets shared by every listener (TCP, TLS, WS, WSS, PROXY fronts and
 * the HTTP port), taken the moment a socket is accepted and given back when it closes.
 *
 * The core's admission (src/broker/admission.ts) only sees a socket once it is an MQTT byte
 * stream: a pending TLS handshake, a WebSocket upgrade, a PROXY header or an HTTP request is
 * invisible to it, yet holds a file descriptor. Counting here, from accept, is what keeps the
 * process below its open-file limit: past the budget a new socket is closed at once (shed), so
 * accept itself never meets EMFILE, which on Deno's native handles stops a listener for good.
 */
import type { Logger } from "../log.ts";

/** A shed socket is logged at most this often, with the running count. */
const SHED_LOG_INTERVAL_MS = 1000;

/** The sockets every listener holds, against one limit. */
export class SocketBudget {
  readonly #limit: number;
  readonly #log: Logger;
  readonly #byListener = new Map<string, number>();
  #open = 0;
  #shed = 0;
  #shedLoggedAt = 0;
  #shedding = false;

  /** `limit`: sockets all listeners together may hold open. */
  constructor(limit: number, log: Logger) {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new RangeError(`socket budget must be a positive integer, got ${limit}`);
    }
    this.#limit = limit;
    this.#log = log;
  }

  /** Sockets all listeners together may hold. */
  get limit(): number {
    return this.#limit;
  }

  /** Sockets held now, all listeners together. */
  get open(): number {
    return this.#open;
  }

  /** Sockets closed unserved because the budget was used up, since start. */
  get shed(): number {
    return this.#shed;
  }

  /**
   * Counts a socket `listener` has just accepted. False: the budget is used up and the caller
   * must close the socket at once (and not call release for it).
   */
  take(listener: string): boolean {
    if (this.#open >= this.#limit) {
      this.#shed++;
      const now = Date.now();
      if (!this.#shedding || now - this.#shedLoggedAt >= SHED_LOG_INTERVAL_MS) {
        this.#shedding = true;
        this.#shedLoggedAt = now;
        this.#log.warn(
          `${listener}: shedding new connections: all ${this.#limit} sockets in use ` +
            `(${this.#summary()}; ${this.#shed} shed so far)`,
        );
      }
      return false;
    }
    this.#open++;
    this.#byListener.set(listener, (this.#byListener.get(listener) ?? 0) + 1);
    return true;
  }

  /** A socket counted by take() has closed. */
  release(listener: string): void {
    this.#open--;
    const n = (this.#byListener.get(listener) ?? 1) - 1;
    if (n <= 0) this.#byListener.delete(listener);
    else this.#byListener.set(listener, n);
    // Below 90 %: the burst is over; say so once, so an operator sees both edges.
    if (this.#shedding && this.#open < this.#limit * 0.9) {
      this.#shedding = false;
      this.#log.info(
        `accepting connections again: ${this.#open} of ${this.#limit} sockets in use ` +
          `(${this.#shed} shed so far)`,
      );
    }
  }

  /** Per-listener counts, e.g. "tcp 10, ws 190". */
  #summary(): string {
    return [...this.#byListener].map(([k, v]) => `${k} ${v}`).join(", ") || "none";
  }
}
