/**
 * Output that ClientOutput keeps apart from its output buffer: held back behind a store commit
 * (its commit gate), or too large to be copied into the buffer.
 */

/**
 * Bytes from which a payload (or an encoded packet) is not copied into the output buffer but
 * written as it is, after what was buffered before it: a 64 KiB PUBLISH copied in, and the
 * buffer grown (and copied again) around it, cost more than the extra write.
 */
export const LARGE_OUTPUT = 16 * 1024;

/** Buffers in one gathering write at most (the system's limit is 1,024). */
export const MAX_GATHER = 64;

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

/** The shared empty gate; frozen, so a push that skipped the copy-on-write check would throw. */
export const NO_GATE: GateSegment[] = Object.freeze([]) as unknown as GateSegment[];

/** `parts` in one new buffer. */
export function joinBytes(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
