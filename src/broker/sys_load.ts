/**
 * Mosquitto's `$SYS/broker/load/...` figures: for each counter, how many per minute, as an
 * exponentially weighted moving average over 1, 5 and 15 minutes, updated once per `$SYS`
 * interval (the same formula as Mosquitto's sys_tree.c, so the numbers read the same).
 */

/** The averaging windows, as named in the topics, with their length in seconds. */
export const LOAD_WINDOWS: readonly (readonly [string, number])[] = [
  ["1min", 60],
  ["5min", 300],
  ["15min", 900],
];

/** Moving averages of a fixed list of counters. */
export class LoadAverages {
  readonly #names: readonly string[];
  #last: number[] | null = null;
  #at = 0;
  readonly #avg: Float64Array;

  /** `names`: the series, as in `$SYS/broker/load/<name>/<window>`. */
  constructor(names: readonly string[]) {
    this.#names = names;
    this.#avg = new Float64Array(names.length * LOAD_WINDOWS.length);
  }

  /** Feeds the counters' current values (in the order of the names) at `now` (ms). */
  update(counts: readonly number[], now: number): void {
    const last = this.#last;
    const dt = (now - this.#at) / 1000;
    if (last !== null && dt > 0) {
      for (let i = 0; i < counts.length; i++) {
        // Per minute over the last interval, folded into each window's average.
        const perMinute = (counts[i] - last[i]) * 60 / dt;
        for (let w = 0; w < LOAD_WINDOWS.length; w++) {
          const e = Math.exp(-dt / LOAD_WINDOWS[w][1]);
          const k = i * LOAD_WINDOWS.length + w;
          this.#avg[k] = e * this.#avg[k] + (1 - e) * perMinute;
        }
      }
    }
    this.#last = counts.slice();
    this.#at = now;
  }

  /** Writes `load/<name>/<window>` → average into `out`. */
  into(out: Record<string, number>): void {
    for (let i = 0; i < this.#names.length; i++) {
      for (let w = 0; w < LOAD_WINDOWS.length; w++) {
        out[`load/${this.#names[i]}/${LOAD_WINDOWS[w][0]}`] =
          this.#avg[i * LOAD_WINDOWS.length + w];
      }
    }
  }
}
