/** The memory store's outbound entries in seq order, without a Map (seq_list.ts). */
import assert from "node:assert/strict";
import { SeqList } from "../../src/store/seq_list.ts";

interface E {
  seq: number;
  v: number;
}

Deno.test("seq list answers as a sorted Map would, through random adds, replaces and removals", () => {
  // Seqs mostly rising (as a session numbers its deliveries), removals mostly oldest first, some
  // out of order, some of a seq that is not there, replacements (PUBREC) and a few seqs added
  // below the newest (a restored session).
  let seed = 4242;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const list = new SeqList<E>();
  const map = new Map<number, E>();
  let next = 1;
  for (let step = 0; step < 100_000; step++) {
    const r = rand();
    const window = step < 50_000 ? 10 : 2000;
    if (map.size < window && r < 0.5) {
      const e = { seq: next, v: step };
      next += 1 + Math.floor(rand() * 3);
      list.set(e);
      map.set(e.seq, e);
    } else if (r < 0.55 && map.size > 0) {
      const keys = [...map.keys()];
      const e = { seq: keys[Math.floor(rand() * keys.length)], v: -step };
      list.set(e);
      map.set(e.seq, e);
    } else if (r < 0.57) {
      // below the newest: a gap between two live seqs, or a seq never used
      const seq = Math.max(0, next - 1 - Math.floor(rand() * 50));
      if (!map.has(seq)) {
        const e = { seq, v: step };
        list.set(e);
        map.set(seq, e);
      }
    } else if (map.size > 0) {
      const keys = [...map.keys()].sort((a, b) => a - b);
      const k = rand() < 0.85
        ? keys[0]
        : rand() < 0.9
        ? keys[Math.floor(rand() * keys.length)]
        : -5;
      assert.equal(list.delete(k), map.delete(k), `delete ${k} at step ${step}`);
    }
    if (step % 499 === 0) {
      assert.equal(list.size, map.size);
      const sorted = [...map.values()].sort((a, b) => a.seq - b.seq);
      assert.deepEqual(list.values(), sorted, `order at step ${step}`);
    }
  }
});

Deno.test("seq list stays small behind an entry that is never removed", () => {
  const list = new SeqList<E>();
  list.set({ seq: 0, v: 0 });
  for (let i = 1; i <= 100_000; i++) {
    list.set({ seq: i, v: i });
    list.set({ seq: i, v: -i });
    assert.ok(list.delete(i));
    assert.ok(list.kept <= 2 * list.size + 33, `kept ${list.kept} at ${i}`);
  }
  assert.deepEqual(list.values(), [{ seq: 0, v: 0 }]);
  assert.equal(list.delete(0), true);
  assert.equal(list.size, 0);
  assert.equal(list.kept, 0);
  assert.equal(list.delete(0), false);
});

Deno.test("seq list keeps holes before a later entry bounded when the oldest ones stay", () => {
  // Every other entry acknowledged: half the slots are holes, and compaction keeps them in check.
  const list = new SeqList<E>();
  for (let i = 0; i < 20_000; i++) list.set({ seq: i, v: i });
  for (let i = 1; i < 20_000; i += 2) assert.ok(list.delete(i));
  assert.equal(list.size, 10_000);
  assert.ok(list.kept <= 2 * list.size + 33, `kept ${list.kept}`);
  assert.deepEqual(list.values().map((e) => e.seq).slice(0, 3), [0, 2, 4]);
});
