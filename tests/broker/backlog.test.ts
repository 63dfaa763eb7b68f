/**
 * A resumed session's backlog loads page by page, paced by the client, and what is queued for
 * it meanwhile waits behind it: stored pages first, then a takeover's stream backlog, then the
 * newer messages.
 */
import assert from "node:assert/strict";
import { BacklogLoader } from "../../src/broker/backlog.ts";
import type { OutboundEntry, QueueRest } from "../../src/broker/model.ts";
import { backlogTurn, Session } from "../../src/broker/session.ts";
import { silentLogger } from "../../src/log.ts";
import { entry } from "../store/contract.ts";
import { waitFor } from "../helpers/wait.ts";

/** A stored queue of `seqs` read `page` at a time; counts the reads. */
function storedQueue(seqs: number[], page: number): QueueRest & { reads: number } {
  let pos = 0;
  return {
    reads: 0,
    get remaining() {
      return seqs.length - pos;
    },
    lastSeq: seqs[seqs.length - 1],
    next() {
      this.reads++;
      const part = seqs.slice(pos, pos + page).map((s) => entry(s));
      pos += part.length;
      return Promise.resolve(part);
    },
  };
}

function setup(readable?: (s: Session, e: OutboundEntry) => boolean) {
  const s = new Session("c", 3600, 4);
  const sessions = new Map([["c", s]]);
  const got: number[] = [];
  let connected = false;
  const pump = (x: Session) => {
    if (!connected) return;
    for (let e = x.dequeue(); e; e = x.dequeue()) got.push(e.seq);
    x.wantBacklog();
  };
  const loader = new BacklogLoader({
    log: silentLogger,
    pump,
    current: (x) => sessions.get(x.clientId) === x,
    readable,
  });
  return {
    s,
    got,
    loader,
    sessions,
    connect() {
      connected = true;
      pump(s);
    },
  };
}

/** What a delivery does: numbered after everything stored, then queued. */
function queue(s: Session): OutboundEntry {
  const e = entry(s.nextSeq++, { message: entry(0).message });
  s.enqueue(e);
  return e;
}

Deno.test("a backlog is read only as the client drains it, and newer messages wait behind it", async () => {
  const t = setup();
  const stored = Array.from({ length: 5000 }, (_, i) => 10 + i);
  // The session was restored with the first page; the loader reads the rest.
  for (const seq of stored.slice(0, 1000)) t.s.enqueue(entry(seq));
  const rest = storedQueue(stored.slice(1000), 1000);
  t.loader.start(t.s, rest, false);
  assert.equal(t.s.nextSeq, stored[stored.length - 1] + 1, "new entries numbered after the rest");
  // Offline: nothing drains what is ready, so nothing more is read.
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(rest.reads, 0);
  const newer = [queue(t.s), queue(t.s)].map((e) => e.seq);
  assert.equal(t.s.readyLength, 1000);
  t.connect();
  await waitFor(() => t.s.backlog === null && t.got.length === 5002, { what: "the backlog" });
  assert.deepEqual(t.got, [...stored, ...newer]);
  assert.equal(rest.reads, 4);
  assert.equal(t.loader.active, 0);
});

Deno.test("a takeover's stream backlog goes after the stored queue and before newer messages", async () => {
  const t = setup();
  const stored = Array.from({ length: 1500 }, (_, i) => 1 + i);
  for (const seq of stored.slice(0, 1000)) t.s.enqueue(entry(seq));
  t.loader.start(t.s, storedQueue(stored.slice(1000), 1000), true);
  const order: number[] = [];
  for (let i = 0; i < 3; i++) {
    // A page of the dead node's stream, delivered in one turn, then something newer.
    backlogTurn.active = true;
    for (let j = 0; j < 700; j++) order.push(queue(t.s).seq);
    backlogTurn.active = false;
    const later = queue(t.s).seq;
    order.push(-later);
    await new Promise((r) => setTimeout(r, 1));
  }
  t.connect();
  // The stream backlog is delivered while it may still grow; the newer messages are not.
  await waitFor(() => t.got.length === 1500 + 2100, { what: "the stored and stream backlog" });
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(t.got.length, 1500 + 2100);
  assert.notEqual(t.s.backlog, null, "newer messages wait until the stream backlog is complete");
  t.loader.close(t.s);
  await waitFor(() => t.s.backlog === null && t.got.length === 1500 + 2103, { what: "the rest" });
  const tail = order.filter((x) => x > 0);
  const newer = order.filter((x) => x < 0).map((x) => -x);
  assert.deepEqual(t.got, [...stored, ...tail, ...newer]);
});

Deno.test("a backlog loader stops when its session is released", async () => {
  const t = setup();
  for (let seq = 1; seq <= 1000; seq++) t.s.enqueue(entry(seq));
  const rest = storedQueue(Array.from({ length: 3000 }, (_, i) => 1001 + i), 1000);
  t.loader.start(t.s, rest, false);
  t.sessions.delete("c");
  t.s.releaseQueue();
  await waitFor(() => t.loader.active === 0, { what: "the loader to stop" });
  assert.equal(rest.reads, 0);
});

Deno.test("pages read after the resume drop what the client may no longer read", async () => {
  const denied: number[] = [];
  const t = setup((_s, e) => {
    if (e.seq % 2 === 0) return true;
    denied.push(e.seq);
    return false;
  });
  for (let seq = 1; seq <= 1000; seq++) t.s.enqueue(entry(seq));
  t.loader.start(t.s, storedQueue(Array.from({ length: 2000 }, (_, i) => 1001 + i), 1000), false);
  t.connect();
  await waitFor(() => t.s.backlog === null, { what: "the backlog" });
  // The first page was checked at the resume (Sessions.reauthorize), the rest here.
  assert.equal(t.got.length, 1000 + 1000);
  assert.ok(t.got.slice(1000).every((seq) => seq % 2 === 0));
  assert.equal(denied.length, 1000);
});
