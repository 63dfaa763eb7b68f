/**
 * Pieces of a connection's output (ClientOutput, output.ts) besides its buffer: segments held
 * back until a store commit, and payloads handed to the transport by reference.
 */

const EMPTY = new Uint8Array(0);

/**
 * Output held until `barrier` (a store commit) resolves, packed into one buffer: an ack or a
 * PUBLISH behind a commit is a few bytes appended, not a buffer of its own.
 */
export class GateSegment {
  readonly barrier: Promise<void>;
  buf: Uint8Array;
  len: number;

  /** `first` is adopted, not copied; it has no spare room, so nothing is ever written into it. */
  constructor(barrier: Promise<void>, first: Uint8Array = EMPTY) {
    this.barrier = barrier;
    this.buf = first;
    this.len = first.byteLength;
  }

  /** The buffer with room for `n` more bytes at `len`. */
  room(n: number): Uint8Array {
    if (this.buf.byteLength - this.len < n) {
      const next = new Uint8Array(Math.max(this.len + n, this.buf.byteLength * 2, 64));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
    }
    return this.buf;
  }

  append(bytes: Uint8Array): void {
    this.room(bytes.byteLength).set(bytes, this.len);
    this.len += bytes.byteLength;
  }
}

/**
 * Payloads at least this large go to the transport as they are, behind the PUBLISH's header,
 * rather than copied into the output buffer: a copy (and a fresh zeroed buffer of that size,
 * soon garbage) costs more than the extra write. Payloads are never changed once received.
 */
export const BY_REFERENCE_BYTES = 16 * 1024;

/** No output handed over by reference (most connections, most of the time): no array. */
export const NO_SPILL: Uint8Array[] = Object.freeze([]) as unknown as Uint8Array[];

/** `parts` in one buffer. */
export function joined(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n);
  n = 0;
  for (const p of parts) {
    out.set(p, n);
    n += p.byteLength;
  }
  return out;
}
