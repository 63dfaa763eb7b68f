/**
 * Waiting for a condition in tests. A fixed sleep either wastes time or, on a loaded machine,
 * is too short; polling with a deadline waits exactly as long as needed and, when the thing
 * never happens, fails saying what it was waiting for.
 */

export interface WaitOptions {
  /** What is awaited, for the timeout error ("the producer to connect"). */
  what: string;
  /** Give up after this many ms. Default 5 000. */
  timeout?: number;
  /** Time between checks in ms. Default 10. */
  interval?: number;
  /** What was seen instead, appended to the timeout error. */
  detail?: () => string;
}

type Falsy = undefined | null | false;

/**
 * Checks `condition` until it returns something other than undefined, null or false, and
 * resolves with that. Rejects after `timeout`, naming `what`; an error thrown by `condition`
 * ends the wait at once (e.g. the process being waited on exited).
 */
export async function waitFor<T>(
  condition: () => T | Falsy | Promise<T | Falsy>,
  opts: WaitOptions,
): Promise<Exclude<T, Falsy>> {
  const timeout = opts.timeout ?? 5_000;
  const interval = opts.interval ?? 10;
  const start = performance.now();
  for (;;) {
    const v = await condition();
    if (v !== undefined && v !== null && v !== false) return v as Exclude<T, Falsy>;
    const left = timeout - (performance.now() - start);
    if (left <= 0) {
      const detail = opts.detail ? ` (${opts.detail()})` : "";
      throw new Error(`timed out after ${timeout} ms waiting for ${opts.what}${detail}`);
    }
    await new Promise((done) => setTimeout(done, Math.min(interval, left)));
  }
}
