/** Latency histogram (log buckets, ~1% precision) and small statistics helpers. */

const GROWTH = Math.log(1.01);
const BUCKETS = 2400; // 1.01^2400 µs is far beyond any run

export class LatencyHistogram {
  private counts = new Float64Array(BUCKETS);
  count = 0;
  enabled = true;

  /** Records a latency in milliseconds. */
  record(ms: number): void {
    if (!this.enabled) return;
    const us = ms * 1000;
    let i = us <= 0 ? 0 : Math.floor(Math.log(us + 1) / GROWTH);
    if (i >= BUCKETS) i = BUCKETS - 1;
    this.counts[i]++;
    this.count++;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
  }

  /** Percentile (0..100) in milliseconds, NaN when empty. */
  percentile(p: number): number {
    if (this.count === 0) return NaN;
    const target = Math.max(1, Math.ceil((p / 100) * this.count));
    let acc = 0;
    for (let i = 0; i < BUCKETS; i++) {
      acc += this.counts[i];
      if (acc >= target) {
        const lo = Math.exp(i * GROWTH) - 1;
        const hi = Math.exp((i + 1) * GROWTH) - 1;
        return (lo + hi) / 2 / 1000;
      }
    }
    return NaN;
  }
}

export function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

export function fmtNum(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return "-";
  return x.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** Formats a number with 3 significant digits (for latencies and ratios). */
export function fmtSig(x: number): string {
  if (!Number.isFinite(x)) return "-";
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

export function table(headers: string[], rows: string[][], rightAlignFrom = 1): string {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((s, c) => c >= rightAlignFrom ? s.padStart(widths[c]) : s.padEnd(widths[c]))
      .join("  ").trimEnd();
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  ").trimEnd(), ...rows.map(line)]
    .join(
      "\n",
    );
}
