/**
 * Output buffers shared by all connections: one a transport is done with when its write returns
 * (RawIo.returnsBytes: the kernel took the bytes) serves the next flush of any connection.
 *
 * A fresh Uint8Array per flush is zero-filled memory outside V8's heap, which also counts towards
 * its next collection: a node delivering to 50 subscribers spent 4% of its thread making them.
 * Buffers come in powers of two from 256 B to 64 KiB. All connections written to in one turn take
 * theirs before any is flushed, so the pool must hold a turn's worth (with at most 32 kept of each
 * size, a node delivering to 50 subscribers still made 18 buffers a turn); it keeps up to 8 MiB in
 * all, so an idle broker holds little and a connection holds none between flushes.
 */

const SMALLEST = 256;
const LARGEST = 65536;
/** Most bytes kept in all. */
const BUDGET = 8 * 1024 * 1024;
let kept = 0;
/** Free buffers by log2(size) - 8. */
const free: Uint8Array[][] = [];
for (let s = SMALLEST; s <= LARGEST; s *= 2) free.push([]);

/** A buffer of at least `n` bytes (a kept one if there is one); its contents are arbitrary. */
export function takeOutputBuffer(n: number): Uint8Array {
  if (n > LARGEST) return new Uint8Array(n);
  const size = n <= SMALLEST ? SMALLEST : 2 ** Math.ceil(Math.log2(n));
  const buf = free[Math.log2(size) - 8].pop();
  if (buf === undefined) return new Uint8Array(size);
  kept -= size;
  return buf;
}

/** Keeps `buf` (as takeOutputBuffer made it, and nothing else refers to it) for a later take. */
export function giveOutputBuffer(buf: Uint8Array): void {
  const size = buf.byteLength;
  if (size < SMALLEST || size > LARGEST || (size & (size - 1)) !== 0) return;
  if (buf.byteOffset !== 0 || buf.buffer.byteLength !== size || kept + size > BUDGET) return;
  free[Math.log2(size) - 8].push(buf);
  kept += size;
}
