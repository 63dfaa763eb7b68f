import assert from "node:assert/strict";
import { IdleGc } from "../src/idle_gc.ts";

const MiB = 2 ** 20;

/** A heap the test allocates on, and a collector that brings it down to what is live. */
function fakeHeap(live: number) {
  const heap = { used: live, live, allocated: 0, collections: 0 };
  const gc = new IdleGc({
    heap: () => heap,
    collect: () => {
      heap.collections++;
      heap.used = heap.live;
    },
  });
  const allocate = (mib: number) => {
    heap.allocated += mib * MiB;
    heap.used += mib * MiB;
  };
  return { heap, gc, allocate };
}

Deno.test("idle gc: nothing is collected while the thread allocates, once when it stops", () => {
  const { heap, gc, allocate } = fakeHeap(10 * MiB);
  for (let i = 0; i < 3; i++) {
    allocate(30);
    assert.equal(gc.check(), false, `allocating, round ${i}`);
  }
  assert.equal(gc.check(), true);
  assert.equal(heap.used, 10 * MiB);
  for (let i = 0; i < 5; i++) assert.equal(gc.check(), false, "nothing allocated since");
  assert.equal(heap.collections, 1);
});

Deno.test("idle gc: freeing what was live is collected though the heap ends no larger", () => {
  const { heap, gc, allocate } = fakeHeap(60 * MiB);
  // A clear: 60 MiB of retained messages become garbage while the work allocates, with V8
  // collecting the young part by itself, so the heap ends hardly larger than it started.
  heap.live = 9 * MiB;
  for (let i = 0; i < 5; i++) {
    allocate(10);
    heap.used -= 8 * MiB;
    gc.check();
  }
  assert.equal(gc.check(), true);
  assert.equal(heap.used, 9 * MiB);
});

Deno.test("idle gc: little allocation, or little next to a large live heap, is left to V8", () => {
  const small = fakeHeap(10 * MiB);
  small.allocate(10);
  small.gc.check();
  assert.equal(small.gc.check(), false);
  const large = fakeHeap(1024 * MiB);
  large.allocate(200);
  large.gc.check();
  assert.equal(large.gc.check(), false, "200 MiB next to 1 GiB live");
  large.allocate(100);
  large.gc.check();
  assert.equal(large.gc.check(), true, "300 MiB");
});

Deno.test("idle gc: on V8's own counter, a thread that stopped allocating counts as quiet", () => {
  // V8 counts allocation by the buffer handed out, so the counter moves between two samples of
  // a thread that allocates nothing but the sample (130-740 KiB here).
  let collections = 0;
  const gc = new IdleGc({ collect: () => collections++ });
  let burst: number[][] | null = [];
  for (let i = 0; i < 200_000; i++) burst.push([i, i + 1, i + 2]);
  burst = null;
  assert.equal(gc.check(), false, "still allocating");
  assert.equal(gc.check(), true, "quiet since the last sample");
  assert.equal(collections, 1);
  assert.equal(burst, null);
});
