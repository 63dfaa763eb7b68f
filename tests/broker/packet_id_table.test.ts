/** Values by packet id in the order they were set, without a Map (packet_id_table.ts). */
import assert from "node:assert/strict";
import { PacketIdTable } from "../../src/broker/packet_id_table.ts";
import type { OutboundEntry } from "../../src/broker/model.ts";

function entry(seq: number): OutboundEntry {
  const message = {
    id: `m${seq}`,
    topic: "t",
    payload: new Uint8Array(0),
    qos: 1 as const,
    retain: false,
    createdAt: 0,
    origin: "p",
  };
  return { seq, message, qos: 1, retain: false, state: "sent" };
}

Deno.test("packet id table answers as a Map would, through random sends, acks and wrap-around", () => {
  // A seeded walk: ids allocated in sequence with wrap-around (as Session does), acks mostly in
  // order, some out of order, windows from 1 to a few thousand.
  let seed = 12345;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const table = new PacketIdTable<OutboundEntry>();
  const map = new Map<number, OutboundEntry>();
  let next = 65000;
  let seq = 0;
  for (let step = 0; step < 200_000; step++) {
    const window = step < 100_000 ? 8 : 3000;
    if (map.size < window && rand() < 0.55) {
      while (map.has(next)) next = next === 65535 ? 1 : next + 1;
      const e = entry(seq++);
      table.set(next, e);
      map.set(next, e);
      next = next === 65535 ? 1 : next + 1;
    } else if (map.size > 0) {
      const keys = [...map.keys()];
      const k = rand() < 0.9 ? keys[0] : keys[Math.floor(rand() * keys.length)];
      assert.equal(table.delete(k), map.delete(k));
    }
    if (step % 997 === 0) {
      assert.equal(table.size, map.size);
      assert.deepEqual([...table.values()], [...map.values()], `order at step ${step}`);
      for (const [k, v] of map) assert.equal(table.get(k), v);
      assert.equal(table.has(next), map.has(next));
    }
  }
  assert.equal(table.delete(70000), false);
});

Deno.test("packet id table stays small behind an entry that is never acknowledged", () => {
  const table = new PacketIdTable<OutboundEntry>();
  const stuck = entry(0);
  table.set(1, stuck);
  let pid = 2;
  for (let i = 1; i <= 200_000; i++) {
    table.set(pid, entry(i));
    table.delete(pid);
    pid = pid === 65535 ? 2 : pid + 1;
    assert.ok(table.kept <= 4 * table.size + 65, `kept ${table.kept} at ${i}`);
  }
  assert.equal(table.size, 1);
  assert.equal(table.get(1), stuck);
  assert.deepEqual([...table.values()], [stuck]);
});

Deno.test("packet id table keeps an entry's place when its packet id is set again", () => {
  const table = new PacketIdTable<OutboundEntry>();
  const [a, b, c, b2] = [entry(1), entry(2), entry(3), entry(4)];
  table.set(10, a);
  table.set(11, b);
  table.set(12, c);
  table.set(11, b2);
  assert.deepEqual([...table.values()], [a, b2, c]);
  assert.equal(table.size, 3);
});

Deno.test("packet id table may lose entries while its values are walked", () => {
  const table = new PacketIdTable<OutboundEntry>();
  const es = [1, 2, 3, 4, 5].map((i) => entry(i));
  es.forEach((e, i) => table.set(i + 1, e));
  const seen: number[] = [];
  for (const e of table.values()) {
    seen.push(e.seq);
    table.delete(e.seq);
  }
  assert.deepEqual(seen, [1, 2, 3, 4, 5]);
  assert.equal(table.size, 0);
  assert.deepEqual([...table.values()], []);
});

Deno.test("packet id table refuses packet id 0 and ids above 65535", () => {
  const table = new PacketIdTable<OutboundEntry>();
  assert.throws(() => table.set(0, entry(1)), RangeError);
  assert.throws(() => table.set(65536, entry(1)), RangeError);
  table.set(5, entry(5));
  assert.equal(table.get(0), undefined, "0 marks a free slot, not an id");
  assert.equal(table.has(-1), false);
  assert.equal(table.delete(0), false);
  assert.equal(table.size, 1);
});

Deno.test("packet id table finds every id after deletes from the middle of long probe runs", () => {
  // Random ids out of the whole range, so home slots collide and runs wrap around the table's
  // end; every delete moves later entries of its run back (no deleted marks are left).
  let seed = 99;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const table = new PacketIdTable<OutboundEntry>();
  const map = new Map<number, OutboundEntry>();
  for (let round = 0; round < 400; round++) {
    const target = 1 + Math.floor(rand() * 300);
    while (map.size < target) {
      const id = 1 + Math.floor(rand() * 65535);
      if (map.has(id)) continue;
      const e = entry(round * 1000 + map.size);
      table.set(id, e);
      map.set(id, e);
    }
    const keys = [...map.keys()];
    for (let n = Math.floor(rand() * keys.length); n > 0; n--) {
      const k = keys.splice(Math.floor(rand() * keys.length), 1)[0];
      assert.equal(table.delete(k), true);
      map.delete(k);
    }
    assert.equal(table.size, map.size);
    for (const [k, v] of map) assert.equal(table.get(k), v, `id ${k} in round ${round}`);
    for (let probe = 0; probe < 50; probe++) {
      const id = 1 + Math.floor(rand() * 65535);
      assert.equal(table.has(id), map.has(id));
    }
    assert.deepEqual([...table.values()], [...map.values()]);
  }
});

Deno.test("packet id tables that grow and empty in turn answer as their own Maps would", () => {
  // Tables hand the arrays they outgrow or empty to the next table that grows: with several
  // tables filling and draining in turn, one that kept using an array it gave away would see
  // another table's ids or entries.
  let seed = 777;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const tables = Array.from({ length: 8 }, () => new PacketIdTable<OutboundEntry>());
  const maps = tables.map(() => new Map<number, OutboundEntry>());
  const next = tables.map(() => 1);
  // Each table fills up to a burst of 20 to 900 in flight, then drains to nothing, and again:
  // its rings (up to 2,048 places) and slot arrays go to the others in between.
  const burst = tables.map(() => 0);
  let seq = 0;
  for (let step = 0; step < 100_000; step++) {
    const i = Math.floor(rand() * tables.length);
    const [t, m] = [tables[i], maps[i]];
    if (m.size === 0) burst[i] = 20 + Math.floor(rand() * 880);
    if (m.size >= burst[i]) burst[i] = 0;
    if (burst[i] > 0) {
      const id = next[i];
      next[i] = id === 65535 ? 1 : id + 1;
      const e = entry(seq++);
      t.set(id, e);
      m.set(id, e);
    } else {
      const [id] = m.keys();
      assert.equal(t.delete(id), true);
      m.delete(id);
    }
    if (step % 97 === 0) {
      for (let k = 0; k < tables.length; k++) {
        assert.equal(tables[k].size, maps[k].size, `table ${k} size`);
        assert.deepEqual(tables[k].values(), [...maps[k].values()], `table ${k} entries`);
        for (const [id, e] of maps[k]) assert.equal(tables[k].get(id), e, `table ${k} id ${id}`);
      }
    }
  }
});
