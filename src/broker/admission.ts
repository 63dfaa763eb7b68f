/**
 * Admission of new connections before any byte is read: the connection limit, the per-address
 * limit and the admission hook (rate limits, bans). A refused connection is still answered
 * (CONNACK 0x03 once its CONNECT arrives) unless too many refusals are already waiting.
 */
import type { Logger } from "../log.ts";
import type { BrokerOptions } from "./options.ts";

/** Refused connections allowed to wait for their CONNACK 0x03 at the same time. */
const MAX_REFUSING = 100;

export class Admission {
  readonly #options: BrokerOptions;
  readonly #log: Logger;
  readonly #admit: ((remoteAddress: string) => string | null) | undefined;
  readonly #perIp = new Map<string, number>();
  #refusing = 0;
  #refusals = 0;
  #refusalLoggedAt = 0;

  constructor(
    options: BrokerOptions,
    log: Logger,
    admit: ((remoteAddress: string) => string | null) | undefined,
  ) {
    this.#options = options;
    this.#log = log;
    this.#admit = admit;
  }

  /**
   * Why a new connection from `remoteAddress` must be refused, or null to admit it.
   * `open`: connections currently held, refused ones included.
   */
  check(remoteAddress: string, open: number, closing: boolean): string | null {
    const o = this.#options;
    if (closing) return "server shutting down";
    if (open - this.#refusing >= o.maxConnections) {
      return `connection limit ${o.maxConnections} reached`;
    }
    const ip = hostOf(remoteAddress);
    if (
      o.maxConnectionsPerIp > 0 && (this.#perIp.get(ip) ?? 0) >= o.maxConnectionsPerIp &&
      (o.limitLoopback || !isLoopback(ip))
    ) {
      return `per-address connection limit ${o.maxConnectionsPerIp} reached for ${ip}`;
    }
    return this.#admit ? this.#admit(remoteAddress) : null;
  }

  /**
   * Counts a refusal. Returns false when the connection must be closed at once: a burst of
   * refusals must not use up the file descriptors held in reserve, so beyond a hundred waiting
   * for their CONNACK 0x03 the rest get no answer.
   */
  refused(why: string, remoteAddress: string): boolean {
    this.#noteRefusal(why, remoteAddress);
    if (this.#refusing >= MAX_REFUSING) return false;
    this.#refusing++;
    return true;
  }

  /** A connection is held (admitted, or refused and waiting for its answer). */
  opened(remoteAddress: string): void {
    const ip = hostOf(remoteAddress);
    this.#perIp.set(ip, (this.#perIp.get(ip) ?? 0) + 1);
  }

  /** A held connection closed; `wasRefused` if it had been counted by refused(). */
  closed(remoteAddress: string, wasRefused: boolean): void {
    if (wasRefused) this.#refusing--;
    const ip = hostOf(remoteAddress);
    const n = (this.#perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.#perIp.delete(ip);
    else this.#perIp.set(ip, n);
  }

  /** One log line per second at most, with the count, however many connections are refused. */
  #noteRefusal(why: string, address: string): void {
    this.#refusals++;
    const now = Date.now();
    if (now - this.#refusalLoggedAt < 1000) return;
    this.#refusalLoggedAt = now;
    this.#log.warn(`refusing ${address}: ${why} (${this.#refusals} refused so far)`);
  }
}

/** 127.0.0.0/8 and ::1, also as Deno and node:net spell them ("[::1]", "::ffff:127.0.0.1"). */
function isLoopback(host: string): boolean {
  const h = host.startsWith("[") ? host.slice(1, -1) : host;
  return h === "::1" || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(h);
}

/** The address part of "ip:port" (what per-address limits count). */
export function hostOf(address: string): string {
  const i = address.lastIndexOf(":");
  return i > 0 ? address.slice(0, i) : address;
}
