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
