/**
 * The chaos checker and drain themselves: a missing message is "lost" only when it is neither
 * still in the subscriber's stored session nor dropped under a documented limit, and a drain
 * waits as long as messages keep arriving but gives up once they stop.
 */
import assert from "node:assert/strict";
import { InvariantChecker, limitDropLines } from "./invariants.ts";
import { drain } from "./driver.ts";

function checkerWith(acked: number, received: number): InvariantChecker {
  const c = new InvariantChecker("test");
  for (let i = 0; i < acked; i++) c.acked("p", i);
  for (let i = 0; i < received; i++) c.received(`p:${i}`);
  return c;
}

Deno.test("a missing message found in the subscriber's stored session is still queued, not lost", () => {
  const c = checkerWith(10, 7);
  c.classify({ stored: ["p:7", "p:8"] });
  const t = c.tally();
  assert.equal(t.stillQueued, 2);
  assert.equal(t.lost, 1);
  assert.deepEqual(t.lostSample, ["p:9"]);
  assert.throws(() => c.check(), /1 acknowledged message\(s\) lost: p:9.*2 .* still in the/s);
});

Deno.test("missing messages after a logged queue-limit drop count as dropped by the limit", () => {
  const log = [
    "INFO client chaos-sub connected",
    "WARN queue of chaos-sub is full (1000 messages, 9000 bytes); dropping messages " +
    "(policy drop-new, 1 so far)",
    "WARN queue of someone-else is full (1000 messages, 9000 bytes); dropping messages",
  ].join("\n");
  assert.equal(limitDropLines(log, ["chaos-sub"]).length, 1);
  const c = checkerWith(10, 6);
  c.classify({ limitDrops: limitDropLines(log, ["chaos-sub"]) });
  const t = c.tally();
  assert.equal(t.droppedByLimit, 4);
  assert.equal(t.lost, 0);
  assert.throws(() => c.check(), /dropped under a documented limit \(not a durability loss\)/);
  assert.equal(c.check({ limitDropsAllowed: true }).droppedByLimit, 4);
});

Deno.test("without drops or stored copies a missing message is lost", () => {
  const c = checkerWith(3, 2);
  c.classify({ stored: [], limitDrops: limitDropLines("WARN queue of other is full", ["sub"]) });
  assert.equal(c.tally().lost, 1);
});

const settled = { settled: true, stop() {} } as unknown as Parameters<typeof drain>[0][number];

Deno.test("a drain keeps waiting past its stall time while messages keep arriving", async () => {
  const c = checkerWith(8, 0);
  let next = 0;
  // One message every 100 ms: 800 ms in all, over a 300 ms stall limit.
  const t = setInterval(() => next < 8 && c.received(`p:${next++}`), 100);
  try {
    const d = await drain([settled], c, 300, 10_000);
    assert.equal(d.complete, true);
    assert.ok(d.ms >= 700, `took ${d.ms} ms`);
  } finally {
    clearInterval(t);
  }
});

Deno.test("a drain gives up once nothing has arrived for its stall time", async () => {
  const c = checkerWith(5, 3);
  const d = await drain([settled], c, 300, 10_000);
  assert.equal(d.complete, false);
  assert.equal(d.stalled, true);
  assert.equal(d.missing, 2);
});
