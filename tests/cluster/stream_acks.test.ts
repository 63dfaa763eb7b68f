/**
 * Shared acknowledgements of stream entries (stream_acks.ts): unit tests with a recording Redis
 * client, store and lease (the order of flush, lease check and MULTI is pure logic); the real
 * XACK/XDEL round trip is covered by the cluster e2e and chaos tests, which read through it.
 */
import assert from "node:assert/strict";
import { GAP_MS, StreamAcks, Unsettled } from "../../src/cluster/stream_acks.ts";
import type { LinkContext } from "../../src/cluster/context.ts";

interface Multi {
  commands: string[][];
  answer: PromiseWithResolvers<unknown>;
}

/** A context whose store flushes, lease checks and MULTIs are recorded; MULTIs wait for the test. */
function fakeContext() {
  const log: string[] = [];
  const multis: Multi[] = [];
  let sent: (() => void) | null = null;
  const ctx = {
    store: {
      flush() {
        log.push("flush");
        return Promise.resolve();
      },
    },
    lease: {
      valid() {
        log.push("lease");
        return Promise.resolve();
      },
    },
    cmd: {
      multi() {
        const commands: string[][] = [];
        const m = {
          xack(key: string, group: string, ...ids: string[]) {
            commands.push(["XACK", key, group, ...ids]);
            return m;
          },
          xdel(key: string, ...ids: string[]) {
            commands.push(["XDEL", key, ...ids]);
            return m;
          },
          exec() {
            const answer = Promise.withResolvers<unknown>();
            multis.push({ commands, answer });
            log.push("multi");
            sent?.();
            return answer.promise;
          },
        };
        return m;
      },
    },
  } as unknown as LinkContext;
  /** Resolves once the next MULTI was sent. */
  const nextMulti = () => new Promise<void>((r) => sent = r);
  return { ctx, log, multis, nextMulti };
}

Deno.test("stream acks: reads that become ready while a MULTI is on its way share the next one", async () => {
  const { ctx, log, multis, nextMulti } = fakeContext();
  const acks = new StreamAcks(ctx, "g");
  let sent = nextMulti();
  const first = acks.ack("s:{a}", ["1-0"]);
  await sent;
  assert.equal(multis.length, 1);
  assert.deepEqual(multis[0].commands, [["XACK", "s:{a}", "g", "1-0"], ["XDEL", "s:{a}", "1-0"]]);

  // Three more reads, of two streams, while the first MULTI waits for its answer.
  const done: string[] = [];
  const later = [
    acks.ack("s:{a}", ["2-0", "3-0"]).then(() => done.push("a2")),
    acks.ack("s:{b}", ["7-0"]).then(() => done.push("b")),
    acks.ack("s:{a}", ["4-0"]).then(() => done.push("a4")),
  ];
  await new Promise((r) => setTimeout(r, GAP_MS * 3));
  assert.equal(multis.length, 1, "nothing more is sent before the first MULTI is answered");
  assert.deepEqual(done, []);

  sent = nextMulti();
  multis[0].answer.resolve([]);
  await first;
  await sent;
  assert.equal(multis.length, 2, "the three reads went in one MULTI");
  assert.deepEqual(multis[1].commands, [
    ["XACK", "s:{a}", "g", "2-0", "3-0", "4-0"],
    ["XDEL", "s:{a}", "2-0", "3-0", "4-0"],
    ["XACK", "s:{b}", "g", "7-0"],
    ["XDEL", "s:{b}", "7-0"],
  ]);
  // Every MULTI waits for a store flush and a valid lease first.
  assert.deepEqual(log, ["flush", "lease", "multi", "flush", "lease", "multi"]);
  assert.deepEqual(done, [], "acknowledged only once Redis answered");
  multis[1].answer.resolve([]);
  await Promise.all(later);
  assert.deepEqual(done, ["a2", "b", "a4"]);
  assert.equal(acks.sent, 2);
  assert.equal(acks.reads, 4);
});

Deno.test("stream acks: a failed MULTI fails its reads only, the next ones still go", async () => {
  const { ctx, multis, nextMulti } = fakeContext();
  const acks = new StreamAcks(ctx, "g");
  let sent = nextMulti();
  const failing = acks.ack("s:{a}", ["1-0"]);
  await sent;
  sent = nextMulti();
  const next = acks.ack("s:{a}", ["2-0"]);
  multis[0].answer.reject(new Error("connection lost"));
  await assert.rejects(failing, /connection lost/);
  await sent;
  multis[1].answer.resolve([]);
  await next;
  assert.deepEqual(multis[1].commands[0], ["XACK", "s:{a}", "g", "2-0"]);
});

Deno.test("stream acks: MULTIs are at least GAP_MS apart, and the reads of the gap share one", async () => {
  const { ctx, multis, nextMulti } = fakeContext();
  const acks = new StreamAcks(ctx, "g");
  let sent = nextMulti();
  const t0 = performance.now();
  const first = acks.ack("s:{a}", ["1-0"]);
  await sent;
  multis[0].answer.resolve([]);
  await first;
  sent = nextMulti();
  const a = acks.ack("s:{a}", ["2-0"]);
  const b = acks.ack("s:{a}", ["3-0"]);
  await sent;
  assert.ok(performance.now() - t0 >= GAP_MS - 0.5, "the second MULTI waited for the gap");
  assert.deepEqual(multis[1].commands[0], ["XACK", "s:{a}", "g", "2-0", "3-0"]);
  multis[1].answer.resolve([]);
  await Promise.all([a, b]);
});

Deno.test("unsettled: none() waits for every promise added, rejected ones included", async () => {
  const u = new Unsettled();
  await u.none(); // nothing added: at once
  const a = Promise.withResolvers<void>();
  const b = Promise.withResolvers<void>();
  u.add(a.promise);
  u.add(b.promise);
  let done = false;
  const waiting = u.none().then(() => done = true);
  a.resolve();
  await new Promise((r) => setTimeout(r, 1));
  assert.equal(done, false);
  b.reject(new Error("failed ack"));
  b.promise.catch(() => {});
  await waiting;
  assert.equal(done, true);
});
