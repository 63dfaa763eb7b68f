/**
 * The chaos suite's invariant checker, shared by every scenario (single node and cluster).
 *
 * Publishers number their messages ("<publisher>:<seq>" payloads, see driver.ts) and report
 * each acknowledgement (PUBACK for QoS 1, PUBCOMP for QoS 2); subscribers report each message
 * they are handed. The checker then says, per scenario:
 * - acked: messages the broker acknowledged;
 * - received: distinct messages that reached the subscriber(s);
 * - lost: acknowledged but never received (must be 0: "no PUBACK/PUBCOMP before it is safe");
 * - duplicated: extra receptions of a message already received (QoS 2 on one node must be 0;
 *   QoS 1 is at least once, so its duplicates are counted but allowed);
 * - outOfOrder: first receptions of a publisher's message after a later one of the same
 *   publisher (order per publisher).
 *
 * An acknowledged message that never arrived is not always a durability bug, and the checker
 * says which it is once the scenario tells it what it found (classify()):
 * - stillQueued: it is in the subscriber's stored session (queued or in flight): slow or stuck
 *   delivery, not lost;
 * - droppedByLimit: the broker logged drops for the subscriber under a documented limit
 *   (max-queued-messages / max-queued-bytes, max-queued-bytes-total): discarded by design;
 * - lost: neither — acknowledged and gone.
 */

/** One scenario's figures. */
export interface Tally {
  scenario: string;
  acked: number;
  received: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  /** Missing but still in the subscriber's stored session (see classify). */
  stillQueued: number;
  /** Missing, not stored, and the broker logged drops under a documented limit (see classify). */
  droppedByLimit: number;
  /** A few lost message keys, for the failure message. */
  lostSample: string[];
  /** A few duplicated message keys. */
  duplicatedSample: string[];
}

/** What a scenario demands of its tally. */
export interface Expectations {
  /** Duplicates allowed (false for QoS 2 on one node). Default true. */
  duplicatesAllowed?: boolean;
  /** Out-of-order first receptions allowed. Default false. */
  reorderAllowed?: boolean;
  /** Drops under a documented limit allowed (a scenario about the limit). Default false. */
  limitDropsAllowed?: boolean;
}

/** What a scenario found out about the missing messages (see InvariantChecker.classify). */
export interface MissingFacts {
  /** messageKeys found in the subscriber's stored session. */
  stored?: Iterable<string>;
  /** The broker's log lines reporting drops under a documented limit for the subscriber(s). */
  limitDrops?: string[];
}

/**
 * Log lines of a broker that dropped messages under a documented limit (see delivery.ts): a full
 * session queue, the node-wide queue budget. `clientIds` narrows them to those subscribers.
 */
export function limitDropLines(log: string, clientIds?: string[]): string[] {
  return log.split("\n").filter((l) =>
    (/queue of .* is full/.test(l) && (!clientIds || clientIds.some((c) => l.includes(c)))) ||
    /max-queued-bytes-total/.test(l)
  );
}

/** The payload of message `seq` of `publisher`. */
export function messageKey(publisher: string, seq: number): string {
  return `${publisher}:${seq}`;
}

/** Splits a payload made by messageKey (padding after a space ignored), or null. */
export function parseKey(payload: string): { publisher: string; seq: number } | null {
  const sp = payload.indexOf(" ");
  if (sp >= 0) payload = payload.slice(0, sp);
  const i = payload.lastIndexOf(":");
  if (i <= 0) return null;
  const seq = Number(payload.slice(i + 1));
  if (!Number.isInteger(seq)) return null;
  return { publisher: payload.slice(0, i), seq };
}

/** Collects acknowledgements and receptions, then checks them. */
export class InvariantChecker {
  readonly scenario: string;
  #acked = new Set<string>();
  #received = new Map<string, number>();
  #lastSeq = new Map<string, number>();
  #outOfOrder = 0;
  #foreign = 0;
  #stored = new Set<string>();
  #limitDrops: string[] = [];

  constructor(scenario: string) {
    this.scenario = scenario;
  }

  /** The broker acknowledged message `seq` of `publisher` (PUBACK, or PUBCOMP for QoS 2). */
  acked(publisher: string, seq: number): void {
    this.#acked.add(messageKey(publisher, seq));
  }

  /** A subscriber was handed `payload` (a messageKey). */
  received(payload: string): void {
    const k = parseKey(payload);
    if (k === null) {
      this.#foreign++;
      return;
    }
    payload = messageKey(k.publisher, k.seq);
    const n = this.#received.get(payload) ?? 0;
    this.#received.set(payload, n + 1);
    if (n > 0) return;
    const last = this.#lastSeq.get(k.publisher) ?? -1;
    if (k.seq < last) this.#outOfOrder++;
    else this.#lastSeq.set(k.publisher, k.seq);
  }

  /** Whether message `seq` of `publisher` has been received at least once. */
  has(publisher: string, seq: number): boolean {
    return this.#received.has(messageKey(publisher, seq));
  }

  /** How many acknowledged messages are still missing at the subscriber. */
  missing(): number {
    let n = 0;
    for (const k of this.#acked) if (!this.#received.has(k)) n++;
    return n;
  }

  /** The acknowledged messages not received yet, as messageKeys. */
  missingKeys(): string[] {
    return [...this.#acked].filter((k) => !this.#received.has(k));
  }

  /** The acknowledged messages so far, as messageKeys. */
  ackedKeys(): string[] {
    return [...this.#acked];
  }

  get ackedCount(): number {
    return this.#acked.size;
  }

  /**
   * Tells the checker where missing messages are (their keys in the subscriber's stored
   * session) and which drops the broker logged, so that the tally separates "still queued" and
   * "dropped by a documented limit" from "lost".
   */
  classify(facts: MissingFacts): void {
    for (const k of facts.stored ?? []) this.#stored.add(k);
    this.#limitDrops.push(...(facts.limitDrops ?? []));
  }

  /** The figures so far. */
  tally(): Tally {
    const lostSample: string[] = [];
    let lost = 0;
    let stillQueued = 0;
    let droppedByLimit = 0;
    for (const k of this.#acked) {
      if (this.#received.has(k)) continue;
      if (this.#stored.has(k)) stillQueued++;
      else if (this.#limitDrops.length > 0) droppedByLimit++;
      else {
        lost++;
        if (lostSample.length < 10) lostSample.push(k);
      }
    }
    let duplicated = 0;
    const duplicatedSample: string[] = [];
    for (const [k, n] of this.#received) {
      if (n < 2) continue;
      duplicated += n - 1;
      if (duplicatedSample.length < 10) duplicatedSample.push(`${k} x${n}`);
    }
    return {
      scenario: this.scenario,
      acked: this.#acked.size,
      received: this.#received.size,
      lost,
      duplicated,
      outOfOrder: this.#outOfOrder,
      stillQueued,
      droppedByLimit,
      lostSample,
      duplicatedSample,
    };
  }

  /** Prints the one line every scenario prints, and returns the tally. */
  report(): Tally {
    const t = this.tally();
    console.log(
      `chaos ${t.scenario}: acked=${t.acked} received=${t.received} lost=${t.lost} ` +
        `duplicated=${t.duplicated} outOfOrder=${t.outOfOrder}` +
        (t.stillQueued || t.droppedByLimit
          ? ` stillQueued=${t.stillQueued} droppedByLimit=${t.droppedByLimit}`
          : ""),
    );
    return t;
  }

  /** Throws unless the invariants hold: nothing acknowledged lost, and `e`'s demands. */
  check(e: Expectations = {}): Tally {
    const t = this.report();
    const problems: string[] = [];
    if (t.acked === 0) problems.push("nothing was acknowledged: the scenario proved nothing");
    if (t.lost > 0) problems.push(`${t.lost} acknowledged message(s) lost: ${t.lostSample}`);
    if (t.stillQueued > 0) {
      problems.push(
        `${t.stillQueued} acknowledged message(s) not delivered but still in the subscriber's ` +
          `stored session (not lost: delivery slow or stuck)`,
      );
    }
    if (t.droppedByLimit > 0 && !e.limitDropsAllowed) {
      problems.push(
        `${t.droppedByLimit} acknowledged message(s) not delivered, dropped under a documented ` +
          `limit (not a durability loss): ${this.#limitDrops.slice(-3).join(" / ")}`,
      );
    }
    if (e.duplicatesAllowed === false && t.duplicated > 0) {
      problems.push(`${t.duplicated} duplicate(s) where exactly once holds: ${t.duplicatedSample}`);
    }
    if (!e.reorderAllowed && t.outOfOrder > 0) {
      problems.push(`${t.outOfOrder} first reception(s) out of publisher order`);
    }
    if (this.#foreign > 0) problems.push(`${this.#foreign} message(s) not from a chaos publisher`);
    if (problems.length) throw new Error(`chaos ${t.scenario}: ${problems.join("; ")}`);
    return t;
  }
}
