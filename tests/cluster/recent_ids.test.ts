/** The bounded set of recently seen message ids behind the cluster's duplicate suppression. */
import assert from "node:assert/strict";
import { RecentIds } from "../../src/cluster/recent_ids.ts";

Deno.test("recent ids: an id is new once, then a duplicate, with the mark of its first sighting", () => {
  const r = new RecentIds(10);
  assert.equal(r.mark, 0);
  assert.equal(r.seen("a"), false);
  assert.equal(r.seen("b"), false);
  assert.equal(r.seen("a"), true);
  assert.equal(r.firstSeen("a"), 1);
  assert.equal(r.firstSeen("b"), 2);
  assert.equal(r.firstSeen("c"), undefined);
  assert.equal(r.mark, 2, "a duplicate does not move the mark");
  assert.equal(r.note("a"), 1, "note answers firstSeen for a known id");
  assert.equal(r.note("c"), undefined, "and remembers a new one");
  assert.equal(r.firstSeen("c"), 3);
});

Deno.test("recent ids: the newest half of the bound is always remembered, never more than the bound", () => {
  const max = 100;
  const r = new RecentIds(max);
  for (let i = 0; i < 1000; i++) {
    assert.equal(r.seen(`id-${i}`), false);
    // The newest max/2 ids are still known, with their marks.
    for (let k = Math.max(0, i - max / 2 + 1); k <= i; k += 7) {
      assert.equal(r.firstSeen(`id-${k}`), k + 1);
    }
    // Never more than max ids are held.
    let known = 0;
    for (let k = 0; k <= i; k++) if (r.firstSeen(`id-${k}`) !== undefined) known++;
    assert.ok(known <= max, `${known} ids held after ${i + 1}`);
  }
  assert.equal(r.firstSeen("id-0"), undefined, "the oldest are forgotten");
  assert.equal(r.seen("id-0"), false, "a forgotten id counts as new again");
});

Deno.test("recent ids: node-made ids and ids of any other form are told apart exactly", () => {
  const r = new RecentIds(1000);
  const ids = [
    "n1-lq2x3-1",
    "n1-lq2x3-z",
    "n1-lq2x3-10",
    "n1-lq2x3-01", // not canonical base 36: kept as a string, never taken for "1"
    "n1-lq2x3-A",
    "n1-lq2x3-",
    "n2-lq2x3-1",
    "n1-lq2x3-1\n$share/g/t",
    "plain",
    "-1",
    "n1-lq2x3-zzzzzzzzzz",
    "n1-lq2x3-zzzzzzzzzzz",
  ];
  for (const id of ids) assert.equal(r.seen(id), false, `${JSON.stringify(id)} is new`);
  ids.forEach((id, i) => assert.equal(r.firstSeen(id), i + 1, JSON.stringify(id)));
  for (const id of ids) assert.equal(r.seen(id), true, `${JSON.stringify(id)} is a duplicate`);
  assert.equal(r.firstSeen("n1-lq2x3-2"), undefined);
  assert.equal(r.firstSeen("n3-lq2x3-1"), undefined);
});

Deno.test("recent ids: ids of more node prefixes than one generation indexes are still known", () => {
  const r = new RecentIds(10_000);
  const ids = Array.from({ length: 1500 }, (_, i) => `node${i}-lq2x3-${(i % 40).toString(36)}`);
  for (const id of ids) assert.equal(r.seen(id), false);
  ids.forEach((id, i) => assert.equal(r.firstSeen(id), i + 1, id));
  for (const id of ids) assert.equal(r.seen(id), true, id);
  assert.equal(r.firstSeen("node1499-lq2x3-1"), undefined);
});

Deno.test("recent ids: answers as a plain two-generation map of strings would, ids in any order", () => {
  // The reference: the same generations over plain string Maps.
  class Reference {
    current = new Map<string, number>();
    previous = new Map<string, number>();
    count = 0;
    constructor(readonly generation: number) {}
    note(id: string): number | undefined {
      const first = this.current.get(id) ?? this.previous.get(id);
      if (first !== undefined) return first;
      if (this.current.size >= this.generation) {
        this.previous = this.current;
        this.current = new Map();
      }
      this.current.set(id, ++this.count);
      return undefined;
    }
  }
  let seed = 7;
  const random = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const r = new RecentIds(400);
  const ref = new Reference(200);
  for (let i = 0; i < 20_000; i++) {
    const kind = random(10);
    const id = kind < 7
      ? `n${random(3)}-lq2x3-${(i - random(300)).toString(36)}` // mostly rising, some repeats
      : kind < 9
      ? `other-${random(500)}x`
      : `n1-lq2x3-0${random(5)}`;
    assert.equal(r.note(id), ref.note(id), `${i}: ${id}`);
  }
});
