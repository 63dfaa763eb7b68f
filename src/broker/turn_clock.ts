/**
 * The wall clock read once per turn: the first caller in a turn reads `Date.now()`, later ones in
 * the same synchronous run get that value, and a microtask forgets it when the run ends. A chunk
 * of a hundred PUBLISHes thus costs one clock read, not a hundred (~125 ns each on this kind of
 * VM, 10% of a QoS 1 delivery's CPU). For times whose use is coarser than a turn: a message's
 * creation (expiry is in seconds), when a delivery was held (a 25 ms grace period).
 */
let now = 0;
let valid = false;
const forget = () => {
  valid = false;
};

/** `Date.now()` as it was when this turn first asked. */
export function turnNow(): number {
  if (!valid) {
    now = Date.now();
    valid = true;
    queueMicrotask(forget);
  }
  return now;
}
