/** The lease's local rules: when it asks for a heartbeat, and when a write may go. */
import assert from "node:assert/strict";
import { Lease } from "../../src/cluster/lease.ts";

function lease() {
  const calls = { renew: 0, fenced: [] as string[] };
  const l = new Lease("epoch:n1", 1000, () => calls.renew++, (why) => calls.fenced.push(why));
  return { l, calls };
}

Deno.test("a write before the node joined waits for the join's first heartbeat, asking for none", async () => {
  const { l, calls } = lease();
  const waiting = l.valid();
  assert.ok(waiting instanceof Promise);
  // A heartbeat now would carry epoch "0", which an earlier run's epoch in Redis refuses.
  assert.equal(calls.renew, 0);
  l.rejoined("7");
  l.renewed(Lease.now());
  assert.equal(await waiting, "7");
  assert.deepEqual(calls.fenced, []);
});

Deno.test("a joined node whose lease lapsed asks for a heartbeat before a write", () => {
  const { l, calls } = lease();
  l.rejoined("2");
  const waiting = l.valid();
  assert.ok(waiting instanceof Promise);
  assert.equal(calls.renew, 1);
  l.renewed(Lease.now());
  assert.equal(l.valid(), "2", "held: answered at once");
});

Deno.test("a fenced lease refuses waiting and later writes until the node rejoins", async () => {
  const { l } = lease();
  l.rejoined("3");
  const waiting = l.valid() as Promise<string>;
  l.fence();
  await assert.rejects(waiting, /FENCED/);
  await assert.rejects(Promise.resolve(l.valid()), /FENCED/);
  l.rejoined("4");
  l.renewed(Lease.now());
  assert.equal(l.valid(), "4");
});

Deno.test("many writes waiting on a lapsed lease ask for one heartbeat, not one each", async () => {
  const { l, calls } = lease();
  l.rejoined("5");
  const waiting = Array.from({ length: 100 }, () => l.whenHeld());
  assert.equal(calls.renew, 1);
  l.renewed(Lease.now());
  assert.deepEqual(await Promise.all(waiting), Array(100).fill("5"));
  assert.equal(l.whenHeld(), undefined, "held: nothing to wait for");
});
