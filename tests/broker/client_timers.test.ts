/** The connect-timeout and keep-alive deadlines shared by all connections (client_timers.ts). */
import assert from "node:assert/strict";
import { FixedDelay, KEEPALIVE_SLOT_MS, KeepaliveWheel } from "../../src/broker/client_timers.ts";
import { waitFor } from "../helpers/wait.ts";

interface Item {
  name: string;
  addedAt: number;
  settled: boolean;
  timerSlot: number;
  timerIndex: number;
}

function item(name: string): Item {
  return { name, addedAt: Date.now(), settled: false, timerSlot: 0, timerIndex: 0 };
}

/** A keep-alive wheel's client: a name. */
interface Named {
  name: string;
  timerSlot: number;
  timerIndex: number;
}

function named(name: string): Named {
  return { name, timerSlot: 0, timerIndex: 0 };
}

Deno.test("fixed delays fall due in the order they were set, none before its delay", async () => {
  const expired: [string, number][] = [];
  let q: FixedDelay<Item> | undefined = undefined;
  q = new FixedDelay<Item>(80, (item) => {
    expired.push([item.name, Date.now() - item.addedAt]);
    item.settled = true;
  });
  const items: Item[] = [];
  for (const name of ["a", "b", "c"]) {
    const it = item(name);
    items.push(it);
    q.add(it, it.addedAt);
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
    item.settled = true;
  });
  const a = item("a");
  q.add(a);
  // Settled: nothing waits any more, the lists are dropped.
  q.settle(a);
  const b = item("b");
  q.add(b);
  await waitFor(() => expired.length > 0, { what: "b's deadline" });
  assert.deepEqual(expired, ["b"]);
  q.stop();
});

Deno.test("a settled item is let go at once while others still wait", async () => {
  // Connections that close before their CONNECT while others wait (a connect storm, a
  // fuzzer): each is dropped from the list when it settles, not kept until its deadline.
  const expired: string[] = [];
  const q = new FixedDelay<Item>(60, (it) => expired.push(it.name));
  const a = item("a");
  const b = item("b");
  const c = item("c");
  q.add(a);
  q.add(b);
  q.add(c);
  q.settle(b);
  q.settle(b); // twice: nothing more
  assert.equal(q.size, 2);
  await waitFor(() => expired.length === 2, { what: "a's and c's deadlines" });
  assert.deepEqual(expired, ["a", "c"]);
  assert.equal(q.size, 0);
  q.stop();
});

Deno.test("the keep-alive wheel checks each client once its deadline came, and again when told", async () => {
  const checks: [string, number][] = [];
  const deadlines = new Map<string, number>();
  let again = true;
  const wheel = new KeepaliveWheel<Named>(({ name }, now) => {
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
  wheel.add(named("a"), t0 + 50);
  wheel.add(named("b"), t0 + 120);
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
  const wheel = new KeepaliveWheel<Named>(() => 0);
  wheel.add(named("x"), Date.now() + 60_000);
  wheel.stop();
  assert.equal(wheel.size, 0);
});

Deno.test("a client removed from the wheel is never checked and not kept", async () => {
  // A closed connection with a keep-alive of 65,535 s would otherwise stay listed for 27 hours.
  const checked: string[] = [];
  const wheel = new KeepaliveWheel<Named>(({ name }) => {
    checked.push(name);
    return 0;
  });
  const t0 = Date.now();
  const [a, b, c, d] = ["a", "b", "c", "d"].map(named);
  for (const x of [a, b, c]) wheel.add(x, t0 + 50); // one slot
  wheel.add(d, t0 + 60_000_000);
  wheel.remove(a); // the first of its slot: the last takes its place
  wheel.remove(a); // twice: nothing more
  wheel.remove(d); // alone in its slot
  assert.equal(wheel.size, 2);
  await waitFor(() => checked.length === 2, { what: "b's and c's checks" });
  assert.deepEqual(checked.sort(), ["b", "c"]);
  // Nothing left, the far slot included: the wheel stops its timer by itself.
  await waitFor(() => wheel.size === 0, { what: "an empty wheel" });
  wheel.remove(b); // already checked: nothing
  wheel.stop();
});
