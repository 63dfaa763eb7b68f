/** QoS 1 deliveries held unwritten while their subscribers acknowledge them (volatile.ts). */
import assert from "node:assert/strict";
import { VOLATILE_GRACE_MS, VolatileDeliveries } from "../../src/broker/volatile.ts";
import type { OutboundEntry, StoredMessage } from "../../src/broker/model.ts";
import type { Session } from "../../src/broker/session.ts";

function message(id: string): StoredMessage {
  return {
    id,
    topic: "t",
    payload: new Uint8Array(1),
    qos: 1,
    retain: false,
    createdAt: 0,
    origin: "p",
  };
}

function entry(seq: number, msg = message(`m${seq}`)): OutboundEntry {
  return { seq, message: msg, qos: 1, retain: false, state: "sent", packetId: seq };
}

const sessionA = { id: "a" } as unknown as Session;
const sessionB = { id: "b" } as unknown as Session;

Deno.test("a held delivery acknowledged in time is never written, one left unacknowledged is", async () => {
  const written: number[] = [];
  const { promise: wrote, resolve } = Promise.withResolvers<void>();
  const v = new VolatileDeliveries((_s, e) => {
    written.push(e.seq);
    resolve();
  });
  const [e1, e2, e3] = [entry(1), entry(2), entry(3)];
  const heldAt = Date.now();
  v.hold(sessionA, e1);
  v.hold(sessionA, e2);
  v.hold(sessionB, e3);
  assert.equal(v.acknowledged(e2), true);
  assert.equal(v.acknowledged(e2), false, "an entry is acknowledged once");
  assert.equal(v.acknowledged(e3), true);
  await wrote;
  assert.deepEqual(written, [1]);
  assert.ok(Date.now() - heldAt >= VOLATILE_GRACE_MS - 1, "not written before its grace period");
  assert.equal(v.acknowledged(e1), false, "a written entry is no longer held");
  v.stop();
});

Deno.test("deliveries are written in the order they were held, each after its own grace period", async () => {
  const written: [number, number][] = [];
  let done: () => void = () => {};
  const all = new Promise<void>((r) => done = r);
  const v = new VolatileDeliveries((_s, e) => {
    written.push([e.seq, Date.now()]);
    if (written.length === 2) done();
  });
  const first = entry(1);
  v.hold(sessionA, first);
  const firstAt = Date.now();
  // The second is held well after the first: the first's write must not take it along.
  await new Promise((r) => setTimeout(r, VOLATILE_GRACE_MS / 2));
  const second = entry(2);
  v.hold(sessionA, second);
  const secondAt = Date.now();
  await all;
  assert.deepEqual(written.map(([seq]) => seq), [1, 2]);
  assert.ok(written[0][1] - firstAt >= VOLATILE_GRACE_MS - 1);
  assert.ok(written[1][1] - secondAt >= VOLATILE_GRACE_MS - 1);
  v.stop();
});

Deno.test("the publisher's ack waits until every held copy of its message is settled", () => {
  const written: OutboundEntry[] = [];
  const v = new VolatileDeliveries((_s, e) => written.push(e));
  const msg = message("shared");
  VolatileDeliveries.markAckable(msg);
  const [toA, toB] = [entry(1, msg), entry(2, msg)];
  const offline = {
    id: "b",
    inflight: new Map([[2, toB]]),
    forEachQueued() {},
  } as unknown as Session;
  v.hold(sessionA, toA);
  v.hold(offline, toB);
  let acked = false;
  v.whenSettled(msg, () => acked = true);
  v.acknowledged(toA);
  assert.equal(acked, false, "one copy is still held");
  // B's session goes offline: its held copy is written at once, which settles it too.
  v.settleSession(offline, true);
  assert.deepEqual(written, [toB]);
  assert.equal(acked, true);
  v.stop();
});

Deno.test("thousands of holds acknowledged out of order: each settles once, the rest are written in hold order", async () => {
  // Enough holds to grow the rings several times, with acknowledgements in and out of order,
  // so the head moves, holes are left behind it and entries are moved to new places.
  let seed = 7;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const written: number[] = [];
  let expectedCount = Infinity;
  const { promise: allWritten, resolve } = Promise.withResolvers<void>();
  const v = new VolatileDeliveries((_s, e) => {
    written.push(e.seq);
    if (written.length >= expectedCount) resolve();
  });
  const held: OutboundEntry[] = [];
  const acked = new Set<number>();
  for (let i = 0; i < 5000; i++) {
    const e = entry(i);
    v.hold(i % 2 ? sessionA : sessionB, e);
    held.push(e);
    if (rand() < 0.6) {
      // Mostly the oldest unacknowledged one, sometimes any.
      const pick = rand() < 0.8
        ? held.find((x) => !acked.has(x.seq) && x.seq % 7 !== 3)
        : held[Math.floor(rand() * held.length)];
      if (pick && !acked.has(pick.seq) && pick.seq % 7 !== 3) {
        assert.equal(v.acknowledged(pick), true, `ack of ${pick.seq}`);
        acked.add(pick.seq);
      }
    }
  }
  for (const e of held) {
    if (acked.has(e.seq)) assert.equal(v.acknowledged(e), false, `second ack of ${e.seq}`);
  }
  const expected = held.filter((e) => !acked.has(e.seq)).map((e) => e.seq);
  assert.ok(expected.length > 700, "some held deliveries are never acknowledged");
  expectedCount = expected.length;
  if (written.length >= expectedCount) resolve();
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    allWritten,
    new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`written ${written.length} of ${expectedCount}`)),
        5000,
      );
    }),
  ]);
  clearTimeout(timer);
  assert.deepEqual(written, expected);
  for (const e of held) assert.equal(v.acknowledged(e), false, `${e.seq} is settled`);
  v.stop();
});
