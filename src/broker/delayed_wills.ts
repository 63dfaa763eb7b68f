/**
 * MQTT 5 delayed wills (3.1.3.2.2): a will with a Will Delay Interval whose connection ended while
 * its session lives on waits here, and is published when the delay has passed or the session
 * ends, whichever is first, unless a new connection resumes the session in time (MQTT-3.1.3-9).
 *
 * One map by client id, looked at by the core's one-second tick only when its earliest due time
 * has come: no timer per will, and nothing at all for sessions without a waiting will. A waiting
 * will of a persistent session is in its session record with its due time, so it survives a
 * restart and a node that adopts the session after a crash publishes it when due.
 */
import type { Will } from "../codec/packets.ts";
import type { ClientInfo } from "./model.ts";
import type { Persistence } from "./persistence.ts";
import type { Session } from "./session.ts";

/** A will waiting for its delay. */
interface Waiting {
  will: Will;
  info: ClientInfo;
  dueAt: number;
}

/** Who a will restored from a session record is published as. */
export function restoredInfo(
  clientId: string,
  username: string | undefined,
  protocolVersion: number,
  transport: string,
): ClientInfo {
  return { clientId, username, remoteAddress: transport, transport, protocolVersion };
}

export class DelayedWills {
  readonly #persistence: Persistence;
  readonly #publish: (info: ClientInfo, will: Will) => void;
  readonly #waiting = new Map<string, Waiting>();
  #earliest = Infinity;

  /** `publish`: publishes a will now (authorized as `info`). */
  constructor(persistence: Persistence, publish: (info: ClientInfo, will: Will) => void) {
    this.#persistence = persistence;
    this.#publish = publish;
  }

  /** How many wills are waiting (for tests and stats). */
  get size(): number {
    return this.#waiting.size;
  }

  /** True when `clientId` has a will waiting. */
  has(clientId: string): boolean {
    return this.#waiting.has(clientId);
  }

  /**
   * The will of the offline session `s` waits until `dueAt` (ms since epoch) or the end of the
   * session, written to the session record so that it outlives this process.
   */
  hold(s: Session, info: ClientInfo, will: Will, dueAt: number): void {
    this.#waiting.set(s.clientId, { will, info, dueAt });
    if (dueAt < this.#earliest) this.#earliest = dueAt;
    this.#persistence.saveSession(s, will, info.username, dueAt);
  }

  /**
   * A new connection resumed the session in time: its waiting will is never sent (MQTT-3.1.3-9).
   * The caller writes the session record anew (with the new connection's will, if any).
   */
  cancel(clientId: string): void {
    this.#waiting.delete(clientId);
  }

  /**
   * The session of `clientId` moved to another node: the will stays in the shared session
   * record, where the new owner finds it; this node forgets it without publishing.
   */
  forget(clientId: string): void {
    this.#waiting.delete(clientId);
  }

  /** The session ended (expired, or replaced by a Clean Start): its waiting will is due now. */
  sessionEnded(clientId: string): void {
    const w = this.#waiting.get(clientId);
    if (w === undefined) return;
    this.#waiting.delete(clientId);
    this.#publish(w.info, w.will);
  }

  /**
   * Publishes the wills whose delay has passed (the once-a-second tick); `sessions` finds the
   * session whose record then drops the will (MQTT-3.1.2-10).
   */
  due(now: number, sessions: ReadonlyMap<string, Session>): void {
    if (now < this.#earliest) return;
    let earliest = Infinity;
    for (const [id, w] of this.#waiting) {
      if (w.dueAt > now) {
        if (w.dueAt < earliest) earliest = w.dueAt;
        continue;
      }
      this.#waiting.delete(id);
      const s = sessions.get(id);
      if (s !== undefined && s.client === null) this.#persistence.saveSession(s);
      this.#publish(w.info, w.will);
    }
    this.#earliest = earliest;
  }
}
