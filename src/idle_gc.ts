/**
 * Garbage collection when a thread goes quiet after a burst.
 *
 * V8 in Deno collects when allocation pushes the heap to its limit; its memory reducer, which
 * would collect an idle heap, only starts about half a minute after the heap stops growing.
 * A burst (100k retained messages set, then cleared) therefore leaves up to a few hundred MiB
 * of garbage in the main isolate and tens of MiB in the store worker's, and where the next burst
 * finds the heap decides how far it grows: RSS after each round wandered from 390 to 550 MiB
 * while the live heap stayed the same. One full collection once the burst is over makes every
 * round start from the live size. Its pause is proportional to what is live, and it only runs
 * when the heap has stopped growing, so a busy broker is not paused by it.
 */
import v8 from "node:v8";
import vm from "node:vm";

/** Seams for tests; by default this thread's heap and V8's collector. */
export interface IdleGcOptions {
  /** Bytes in use on this thread's heap, and allocated on it ever. */
  heap?: () => { used: number; allocated: number };
  /** A full collection; by default V8's, obtained on first use. */
  collect?: () => void;
}

/**
 * Allocation between two checks below which the thread counts as quiet: below what steady light
 * traffic allocates between two checks (2,000 small messages/s is about 1 MiB/s, 512 KiB), so a
 * broker under load, even light load, never takes a forced full pause; only one that went idle
 * after a burst does. Not lower: V8's counter moves by 130-740 KiB between two samples of a Deno
 * thread that allocates nothing but the sample (each hands out a fresh allocation buffer, counted
 * whole), and an idle broker with its timers shows 200-350 KiB, so with 128 KiB the collection
 * after a burst never came.
 */
const QUIET_ALLOCATION = 512 << 10;
/** Allocation worth a collection: at least this much, and at least a quarter of what is live. */
const MIN_ALLOCATION = 16 << 20;

/**
 * Decides, from periodic samples of the heap, when a collection is worth forcing: the thread
 * allocated a good part of what the last collection left live, and has stopped allocating.
 * Allocation rather than the heap's size: what is freed (100k retained messages cleared) turns
 * into garbage without the heap growing.
 */
export class IdleGc {
  /** Collections forced so far. */
  collections = 0;
  #heap: () => { used: number; allocated: number };
  #collect: (() => void) | undefined;
  /** What the last collection left live. */
  #live: number;
  /** Allocated bytes at the last collection, and at the last check. */
  #base: number;
  #last: number;

  constructor(opts: IdleGcOptions = {}) {
    this.#heap = opts.heap ?? v8Heap;
    this.#collect = opts.collect;
    const h = this.#heap();
    this.#live = h.used;
    this.#base = this.#last = h.allocated;
  }

  /** Takes one sample; collects (and returns true) when a burst is over and left garbage. */
  check(): boolean {
    const { allocated } = this.#heap();
    const quiet = allocated - this.#last < QUIET_ALLOCATION;
    this.#last = allocated;
    // Relative to what is live: the work of these collections (proportional to what is live)
    // stays proportional to the allocation that made them due, as with V8's own heap growing.
    if (!quiet || allocated - this.#base < Math.max(MIN_ALLOCATION, this.#live / 4)) return false;
    (this.#collect ??= v8Collector())();
    this.collections++;
    const h = this.#heap();
    this.#live = h.used;
    this.#base = this.#last = h.allocated;
    return true;
  }
}

function v8Heap(): { used: number; allocated: number } {
  const s = v8.getHeapStatistics() as ReturnType<typeof v8.getHeapStatistics> & {
    total_allocated_bytes: number;
  };
  return { used: s.used_heap_size, allocated: s.total_allocated_bytes };
}

/**
 * Samples the heap every `intervalMs` on this thread; the timer does not keep the process
 * alive. Returns the function that stops it.
 */
export function startIdleGc(intervalMs = 500, opts?: IdleGcOptions): () => void {
  const gc = new IdleGc(opts);
  const timer = setInterval(() => gc.check(), intervalMs);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}

/** V8's full collection, without requiring --expose-gc on the command line. */
function v8Collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  // Exposes `gc` in contexts created from now on; ours is the first to ask for it.
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc") as () => void;
}
