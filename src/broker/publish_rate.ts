/**
 * A connection's inbound PUBLISH rate limit (`mqttwk.broker.max-publish-rate`): a token bucket,
 * refilled continuously at the rate and holding at most the burst. Only connections of a broker
 * with the limit on have one, so the unlimited path costs a null check.
 */
export class PublishRate {
  readonly #perMs: number;
  readonly #burst: number;
  #tokens: number;
  #at: number;

  /** `rate`: PUBLISHes per second; `burst`: the bucket's size (0: one second's worth). */
  constructor(rate: number, burst: number, now: number) {
    this.#perMs = rate / 1000;
    this.#burst = burst > 0 ? burst : rate;
    this.#tokens = this.#burst;
    this.#at = now;
  }

  /** Takes one token for a PUBLISH at `now` (ms); false when the bucket is empty. */
  take(now: number): boolean {
    let t = this.#tokens + (now - this.#at) * this.#perMs;
    if (t > this.#burst) t = this.#burst;
    this.#at = now;
    if (t < 1) {
      this.#tokens = t;
      return false;
    }
    this.#tokens = t - 1;
    return true;
  }
}
