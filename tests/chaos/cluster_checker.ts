/**
 * The invariant checker of the cluster chaos scenarios: publishers number their messages, and
 * for every subscriber it counts what was acknowledged but never received (lost), what was
 * received more than once (duplicated) and first receptions that came after a later message of
 * the same publisher (out of order).
 */

/** What one subscriber saw of one publisher. */
interface Seen {
  first: Set<number>;
  receptions: number;
  highest: number;
  outOfOrder: number;
  /** Up to five first receptions out of order: "seq after highest (reception n)". */
  oooSample: string[];
}

/** Counts of one subscriber against everything acknowledged. */
export interface Report {
  acked: number;
  received: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  /** Up to five lost messages, "publisher:seq", for the failure message. */
  lostSample: string[];
}

/** Collects acknowledgements and receptions, and judges them. */
export class ClusterChecker {
  #acked = new Map<string, Set<number>>();
  #subs = new Map<string, Map<string, Seen>>();

  /** The broker acknowledged message `seq` of `publisher` (PUBACK / PUBCOMP). */
  acked(publisher: string, seq: number): void {
    let s = this.#acked.get(publisher);
    if (!s) this.#acked.set(publisher, s = new Set());
    s.add(seq);
  }

  /** Subscriber `sub` received message `seq` of `publisher`. */
  received(sub: string, publisher: string, seq: number): void {
    let m = this.#subs.get(sub);
    if (!m) this.#subs.set(sub, m = new Map());
    let s = m.get(publisher);
    if (!s) {
      m.set(
        publisher,
        s = {
          first: new Set(),
          receptions: 0,
          highest: 0,
          outOfOrder: 0,
          oooSample: [],
        },
      );
    }
    s.receptions++;
    if (s.first.has(seq)) return;
    s.first.add(seq);
    if (seq < s.highest) {
      s.outOfOrder++;
      if (s.oooSample.length < 5) s.oooSample.push(`${seq} after ${s.highest} (#${s.receptions})`);
    } else s.highest = seq;
  }

  /** Parses a "publisher:seq" payload and records it; false if it is not one. */
  receivedPayload(sub: string, payload: string): boolean {
    const i = payload.lastIndexOf(":");
    const seq = Number(payload.slice(i + 1));
    if (i <= 0 || !Number.isInteger(seq)) return false;
    this.received(sub, payload.slice(0, i), seq);
    return true;
  }

  /** How many acknowledged messages `sub` has not received yet. */
  missing(sub: string): number {
    return this.report(sub).lost;
  }

  /** First receptions of `publisher`'s messages at `sub` that came after a later one. */
  outOfOrder(sub: string, publisher: string): number {
    return this.#subs.get(sub)?.get(publisher)?.outOfOrder ?? 0;
  }

  /** Up to five out-of-order first receptions of `publisher`'s messages at `sub`. */
  outOfOrderSample(sub: string, publisher: string): string[] {
    return this.#subs.get(sub)?.get(publisher)?.oooSample ?? [];
  }

  /** The counts for subscriber `sub`. */
  report(sub: string): Report {
    const seen = this.#subs.get(sub) ?? new Map<string, Seen>();
    const r: Report = {
      acked: 0,
      received: 0,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
      lostSample: [],
    };
    for (const [pub, acked] of this.#acked) {
      r.acked += acked.size;
      const s = seen.get(pub);
      for (const seq of acked) {
        if (s?.first.has(seq)) continue;
        r.lost++;
        if (r.lostSample.length < 5) r.lostSample.push(`${pub}:${seq}`);
      }
    }
    for (const s of seen.values()) {
      r.received += s.first.size;
      r.duplicated += s.receptions - s.first.size;
      r.outOfOrder += s.outOfOrder;
    }
    return r;
  }

  /** One line per subscriber, for the test output. */
  print(scenario: string, subs: string[], extra = ""): Report[] {
    return subs.map((sub) => {
      const r = this.report(sub);
      console.log(
        `chaos ${scenario} [${sub}]: acked=${r.acked} received=${r.received} lost=${r.lost} ` +
          `duplicated=${r.duplicated} out-of-order=${r.outOfOrder}${extra ? " " + extra : ""}`,
      );
      return r;
    });
  }
}
