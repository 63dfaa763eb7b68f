/**
 * The hardening figures every fuzz and fault test prints (issue 16): what was sent, acknowledged,
 * lost and duplicated, how often the broker crashed, its peak resident memory and how long it
 * took to serve again after the fault. One format for all, so that a CI log can be searched for
 * `FIGURES` and the runs compared; the tests assert what they asserted before, the figures are
 * output only.
 */

/** What one fault (or fuzz) test measured. Absent fields were not measured by that test. */
export interface Figures {
  /** What was counted: "messages" (default) or "sequences". */
  unit?: string;
  sent: number;
  /** Acknowledged by the broker (PUBACK/PUBCOMP, a produced record...). */
  acknowledged?: number;
  /** Acknowledged (or due) but never delivered. */
  lost: number;
  /** Delivered more than once (a QoS 1 redelivery counts; QoS 2 must have none). */
  duplicated?: number;
  /** Broker exits nobody asked for, plus escaped-exception or panic output. */
  crashes: number;
  /** Highest VmRSS of the broker process(es), bytes. */
  peakRss?: number;
  /** From the end of the fault (restart, service back) to the broker serving again, ms. */
  recoveryMs?: number;
  /** Anything else worth a figure ("3 kills", "2 nodes"...). */
  note?: string;
}

/** Bytes as MiB with one decimal, for the figures the tests print. */
export function mib(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}

/** The figures as one line: `FIGURES <name>: sent ..., acknowledged ..., ...`. */
export function formatFigures(name: string, f: Figures): string {
  const unit = f.unit ?? "messages";
  const parts = [
    `${unit} sent ${f.sent}`,
    `acknowledged ${f.acknowledged ?? "n/a"}`,
    `lost ${f.lost}`,
    `duplicated ${f.duplicated ?? "n/a"}`,
    `crashes ${f.crashes}`,
    `peak RSS ${f.peakRss !== undefined ? `${mib(f.peakRss)} MiB` : "n/a"}`,
    `recovery ${f.recoveryMs !== undefined ? `${Math.round(f.recoveryMs)} ms` : "n/a"}`,
  ];
  if (f.note) parts.push(f.note);
  return `FIGURES ${name}: ${parts.join(", ")}`;
}

/** Prints the figures line (see formatFigures) and returns it. */
export function reportFigures(name: string, f: Figures): string {
  const line = formatFigures(name, f);
  console.log(line);
  return line;
}

/** VmRSS of process `pid` in bytes, 0 if it is gone (or there is no procfs). */
export function rssOf(pid: number): number {
  try {
    const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/VmRSS:\s+(\d+) kB/);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Samples the resident memory of the processes `pids()` names (which may change: a restarted
 * broker has a new pid) every `intervalMs` until stopped, and keeps the highest single value.
 */
export class PeakRss {
  peak = 0;
  readonly #pids: () => number[];
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(pids: () => number[], intervalMs = 100) {
    this.#pids = pids;
    this.sample();
    this.#timer = setInterval(() => this.sample(), intervalMs);
  }

  sample(): void {
    for (const pid of this.#pids()) {
      if (pid > 0) this.peak = Math.max(this.peak, rssOf(pid));
    }
  }

  /** Stops sampling (after a last sample) and returns the peak, undefined if never measured. */
  stop(): number | undefined {
    this.sample();
    clearInterval(this.#timer);
    return this.peak > 0 ? this.peak : undefined;
  }
}

/** The output of an escaped exception or a runtime panic in a broker's log. */
const CRASH = /uncaught|panicked|RUST_BACKTRACE/gi;

/** How many times `logs` shows an escaped exception or a panic. */
export function crashSigns(logs: string): number {
  return logs.match(CRASH)?.length ?? 0;
}

/**
 * Sums what the steps of a fault test sent and got back: `expected` the messages that must
 * arrive (each once), `got` what arrived. Lost: expected but absent; duplicated: arrivals beyond
 * the first of the same message.
 */
export class Tally {
  sent = 0;
  acknowledged = 0;
  lost = 0;
  duplicated = 0;

  add(expected: readonly string[], got: readonly string[], acknowledged = expected.length): void {
    this.sent += expected.length;
    this.acknowledged += acknowledged;
    const seen = new Set(got);
    this.lost += expected.filter((m) => !seen.has(m)).length;
    this.duplicated += got.length - seen.size;
  }

  /** The sums, for reportFigures. */
  totals(): Pick<Figures, "sent" | "acknowledged" | "lost" | "duplicated"> {
    const { sent, acknowledged, lost, duplicated } = this;
    return { sent, acknowledged, lost, duplicated };
  }
}
