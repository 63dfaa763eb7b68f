/** The connect-timeout and keep-alive deadlines shared by all connections (client_timers.ts). */
import assert from "node:assert/strict";
import { FixedDelay, KEEPALIVE_SLOT_MS, KeepaliveWheel } from "../../src/broker/client_timers.ts";
import { waitFor } from "../helpers/wait.ts";

interface Item {
  name: string;
  addedAt: number;
  settled: boolean;
}

Deno.test("fixed delays fall due in the order they were set, none before its delay", async () => {
  const expired: [string, number][] = [];
  let q: FixedDelay<Item> | undefined = undefined;
  q = new FixedDelay<Item>(80, (item) => {
    expired.push([item.name, Date.now() - item.addedAt]);
    if (!item.settled) {
      item.settled = true;
      q!.settle();
    }
  });
  const items: Item[] = [];
  for (const name of ["a", "b", "c"]) {
    const item = { name, addedAt: Date.now(), settled: false };
    items.push(item);
    q.add(item, item.addedAt);
    await new Promise((r) => setTimeout(r, 5));
  }
  await waitFor(() => expired.length === 3, { what: "three deadlines" });
  assert.deepEqual(expired.map(([n]) => n), ["a", "b", "c"]);
  for (const [name, after] of expired) assert.ok(after >= 80, `${name} expired after ${after} ms`);
  // Every item settled: the timer is gone (the test's op sanitizer would see a leak).
});

Deno.test("an item that settled before its deadline is not expired", async () => {
  const expired: string[] = [];
  let q: FixedDelay<Item> | undefined = undefined;
  q = new FixedDelay<Item>(40, (item) => {
    expired.push(item.name);
    if (!item.settled) {
      item.settled = true;
      q!.settle();
    }
  });
  const a = { name: "a", addedAt: Date.now(), settled: false };
  q.add(a);
  // Settled: nothing waits any more, the lists are dropped.
  a.settled = true;
  q.settle();
  const b = { name: "b", addedAt: Date.now(), settled: false };
  q.add(b);
  await waitFor(() => expired.length > 0, { what: "b's deadline" });
  assert.deepEqual(expired, ["b"]);
  q.stop();
});

Deno.test("the keep-alive wheel checks each client once its deadline came, and again when told", async () => {
  const checks: [string, number][] = [];
  const deadlines = new Map<string, number>();
  let again = true;
  const wheel = new KeepaliveWheel<string>((name, now) => {
    checks.push([name, now - deadlines.get(name)!]);
    if (name === "b" && again) {
      again = false;
      const next = now + 100;
      deadlines.set(name, next);
      return next;
    }
    return 0;
  });
  const t0 = Date.now();
  deadlines.set("a", t0 + 50);
  deadlines.set("b", t0 + 120);
  wheel.add("a", t0 + 50);
  wheel.add("b", t0 + 120);
  assert.equal(wheel.size, 2);
  await waitFor(() => checks.length === 3, { what: "three checks" });
  assert.deepEqual(checks.map(([n]) => n), ["a", "b", "b"]);
  for (const [name, late] of checks) {
    assert.ok(late >= 0, `${name} checked ${-late} ms before its deadline`);
  }
  // Nothing left: the wheel stops its timer by itself.
  await waitFor(() => wheel.size === 0, { what: "an empty wheel" });
  await new Promise((r) => setTimeout(r, KEEPALIVE_SLOT_MS * 2));
  assert.equal(checks.length, 3);
});

Deno.test("stopping the wheel forgets its clients and its timer", () => {
  const wheel = new KeepaliveWheel<string>(() => 0);
  wheel.add("x", Date.now() + 60_000);
  wheel.stop();
  assert.equal(wheel.size, 0);
});
