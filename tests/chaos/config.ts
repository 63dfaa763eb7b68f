/**
 * How long chaos scenarios run. Bounded by default (CI); MQTTWK_CHAOS_LONG=1 (`deno task chaos`)
 * runs the longer version for a bench machine.
 */

/** True for the opt-in long run. */
export const LONG: boolean = Deno.env.get("MQTTWK_CHAOS_LONG") === "1";

/** How many times a node is killed in a kill loop. */
export const KILLS: number = Number(Deno.env.get("MQTTWK_CHAOS_KILLS") ?? (LONG ? 20 : 4));

/** Publishers per scenario, and the messages each keeps in flight. */
export const PUBLISHERS: number = Number(Deno.env.get("MQTTWK_CHAOS_PUBLISHERS") ?? 2);
export const WINDOW: number = Number(Deno.env.get("MQTTWK_CHAOS_WINDOW") ?? 20);
/** Acknowledged messages between two kills: at least, at most (random in between). */
export const BETWEEN_KILLS: [number, number] = LONG ? [5_000, 40_000] : [200, 3_000];

/** A random integer in [lo, hi). */
export function between(lo: number, hi: number): number {
  return lo + Math.floor(Math.random() * (hi - lo));
}

/** A fresh temporary data directory. */
export function tempDir(prefix: string): string {
  return Deno.makeTempDirSync({ prefix: `mqttwk-chaos-${prefix}-` });
}
