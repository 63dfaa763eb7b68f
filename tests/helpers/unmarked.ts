/**
 * `v` without the marks the broker's hot paths put into every message they make (volatile.ts's
 * bookkeeping, symbol keys holding undefined until a delivery is held): they say nothing about the
 * message, and a strict deep comparison with a message written as a literal would count them.
 */
export function unmarked<T>(v: T): T {
  if (Array.isArray(v)) return v.map(unmarked) as T;
  if (v === null || typeof v !== "object" || Object.getPrototypeOf(v) !== Object.prototype) {
    return v;
  }
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = unmarked(x);
  for (const s of Object.getOwnPropertySymbols(v)) {
    const x = (v as Record<symbol, unknown>)[s];
    if (x !== undefined) (out as Record<symbol, unknown>)[s] = x;
  }
  return out as T;
}
