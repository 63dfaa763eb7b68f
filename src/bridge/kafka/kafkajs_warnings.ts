import process from "node:process";

let warningFilterInstalled = false;

/**
 * kafkajs 2.2.4 arms a timer with a negative delay on every request (its request queue subtracts
 * the current time from a -1 "not throttled" marker), and Node's timers print a
 * TimeoutNegativeWarning to stderr for each. The delay is clamped to 1 ms either way, so only
 * that one warning kind is silenced; every other process warning still prints.
 */
export function silenceKafkajsTimerWarnings(): void {
  if (warningFilterInstalled) return;
  warningFilterInstalled = true;
  const original = process.emitWarning;
  const filtered = function (this: unknown, warning: unknown, ...rest: unknown[]) {
    const opt = rest[0];
    const type = typeof opt === "string"
      ? opt
      : (opt as { type?: string } | undefined)?.type ?? (warning as { name?: string })?.name;
    if (type === "TimeoutNegativeWarning") return;
    return (original as (...a: unknown[]) => void).call(process, warning, ...rest);
  };
  process.emitWarning = filtered as typeof process.emitWarning;
}
