/**
 * Issue 16, finding 7: what clients may pile up is bounded. A CONNECT that would create one more
 * persistent session than the limits allow (per address for clients nobody authenticated, per
 * verified user, per node) gets CONNACK 0x03 and a log line at most once a second; all queues
 * together stop at max-queued-bytes-total, the full-queue policy deciding what goes.
 */
import { QUEUE_ENTRY_OVERHEAD, queuedCost } from "../../src/broker/session.ts";
import assert from "node:assert/strict";
import type { Logger } from "../../src/log.ts";
import {
  connected,
  MemoryClient,
  publishAcked,
  subscribe,
  waitFor,
  withBroker,
} from "./harness.ts";

/** A logger that keeps warnings, to count the refusal lines. */
function warnings(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    level: "warn",
    enabled: (l) => l === "warn" || l === "error",
    debug() {},
    info() {},
    warn: (m) => void lines.push(m),
    error: (m) => void lines.push(m),
  };
}

Deno.test("1,600 persistent sessions from one anonymous address stop at the per-address limit", async () => {
  const log = warnings();
  await withBroker(async (b) => {
    const codes = new Map<number, number>();
    for (let i = 0; i < 1600; i++) {
      const c = new MemoryClient(b, 4, { remoteAddress: `198.51.100.7:${20000 + i}` });
      const ack = await c.connect(`anon-${i}`, false);
      codes.set(ack.reasonCode, (codes.get(ack.reasonCode) ?? 0) + 1);
      c.close();
    }
    await waitFor(() => b.stats.connections === 0, 5000, "every connection to close");
    const refusalLines = log.lines.filter((l) => l.includes("max-sessions-per-address"));
    console.log(
      `1600 CONNECTs (clean session 0) from 198.51.100.7: ${codes.get(0) ?? 0} accepted, ` +
        `${codes.get(3) ?? 0} refused with 0x03; sessions held ${b.sessions.size}; ` +
        `${refusalLines.length} refusal log line(s)`,
    );
    assert.equal(codes.get(0), 1000);
    assert.equal(codes.get(3), 600);
    assert.equal(b.sessions.size, 1000, "no session is created for a refused CONNECT");
    assert.ok(refusalLines.length >= 1 && refusalLines.length <= 3, "rate-limited log line");
    assert.match(refusalLines[0], /per-address session limit 1000 reached for 198\.51\.100\.7/);

    // Still served: a session that exists is resumed, a clean session is not limited, and
    // another address has its own allowance.
    const back = new MemoryClient(b, 4, { remoteAddress: "198.51.100.7:30000" });
    const resumed = await back.connect("anon-5", false);
    assert.equal(resumed.reasonCode, 0);
    assert.equal(resumed.sessionPresent, true);
    (await connected(b, "clean-one", { remoteAddress: "198.51.100.7:30001" })).close();
    (await connected(b, "elsewhere", { clean: false, remoteAddress: "203.0.113.1:1" })).close();
    back.close();
  }, { log });
});

Deno.test("the node-wide session limit refuses a new persistent session from any address", async () => {
  await withBroker(async (b) => {
    for (let i = 0; i < 3; i++) {
      (await connected(b, `p${i}`, { clean: false, remoteAddress: `192.0.2.${i}:1` })).close();
    }
    const c = new MemoryClient(b, 4, { remoteAddress: "192.0.2.99:1" });
    const ack = await c.connect("one-too-many", false);
    console.log(`max-sessions 3: fourth persistent session answered 0x0${ack.reasonCode}`);
    assert.equal(ack.reasonCode, 3);
    await c.waitClosed();
  }, { options: { maxSessions: 3 } });
});

Deno.test("verified users count per user, unverified usernames per address", async () => {
  await withBroker(async (b) => {
    const connectAs = async (id: string, username: string, addr: string) => {
      const c = new MemoryClient(b, 4, { remoteAddress: addr });
      const ack = await c.connect(id, false, { username, password: new Uint8Array([1]) });
      c.close();
      return ack.reasonCode;
    };
    // "alice" is verified: two sessions from two addresses use up her allowance of 2.
    assert.equal(await connectAs("a1", "alice", "192.0.2.1:1"), 0);
    assert.equal(await connectAs("a2", "alice", "192.0.2.2:1"), 0);
    assert.equal(await connectAs("a3", "alice", "192.0.2.3:1"), 3);
    // "mallory" is not verified: changing the username does not escape the address limit.
    assert.equal(await connectAs("m1", "mallory-1", "192.0.2.9:1"), 0);
    assert.equal(await connectAs("m2", "mallory-2", "192.0.2.9:1"), 3);
    console.log("per-user limit 2 and per-address limit 1 held for verified and unverified users");
  }, {
    options: { maxSessionsPerUser: 2, maxSessionsPerAddress: 1 },
    authenticator: {
      authenticate: (req) => req.username === "alice" ? { ok: true, verified: true } : { ok: true },
    },
  });
});

Deno.test("all queues together stop at max-queued-bytes-total and the drop is logged", async () => {
  const log = warnings();
  // Each message counts its payload, its topic ("queue/x", 7) and the entry overhead.
  const limit = 10 * (100 + 7 + QUEUE_ENTRY_OVERHEAD);
  await withBroker(async (b) => {
    // Three offline persistent subscribers: every message queues once per session.
    for (const id of ["q1", "q2", "q3"]) {
      const c = await connected(b, id, { clean: false, remoteAddress: `192.0.2.1:${id}` });
      await subscribe(c, [["queue/#", 1]]);
      c.close();
    }
    await waitFor(() => b.stats.connections === 0, 2000, "subscribers to go offline");
    const pub = await connected(b, "pub");
    for (let i = 0; i < 20; i++) await publishAcked(pub, "queue/x", new Uint8Array(100), 1);
    let queued = 0;
    let bytes = 0;
    for (const s of b.sessions.values()) {
      queued += s.queueLength;
      bytes += s.queuedBytes + s.queueLength * (7 + QUEUE_ENTRY_OVERHEAD);
    }
    const lines = log.lines.filter((l) => l.includes("max-queued-bytes-total"));
    console.log(
      `60 deliveries of 100 B into a ${limit} B total: ${queued} queued (${bytes} B counted), ` +
        `${b.stats.dropped} dropped, ${lines.length} log line(s)`,
    );
    assert.equal(queued, 10);
    assert.ok(bytes <= limit);
    assert.equal(b.stats.dropped, 50);
    assert.equal(lines.length, 1);
    // Sessions that end give their share back: a new subscriber can queue the whole total.
    for (const id of ["q1", "q2", "q3"]) (await connected(b, id, { clean: true })).close();
    const late = await connected(b, "q4", { clean: false, remoteAddress: "192.0.2.1:q4" });
    await subscribe(late, [["queue/#", 1]]);
    late.close();
    await waitFor(() => b.sessions.get("q4")?.client === null, 2000, "q4 to go offline");
    for (let i = 0; i < 10; i++) await publishAcked(pub, "queue/x", new Uint8Array(100), 1);
    assert.equal(b.sessions.get("q4")!.queueLength, 10);
    pub.close();
  }, { log, options: { maxQueuedBytesTotal: limit } });
});

Deno.test("the queue total counts a message's topic and user properties, not only its payload", async () => {
  // An empty payload on a 60,000-character topic weighs 60 KB in memory: it must not count as
  // an empty message (QUEUE_ENTRY_OVERHEAD alone would let 1,000 sessions × 1,000 such messages
  // hold 60 GB under a 128 MiB total).
  const topic = `long/${"t".repeat(60_000)}`;
  const props = { userProperties: [["k", "v".repeat(20_000)]] as [string, string][] };
  const heavy = { topic, payload: new Uint8Array(0), properties: props };
  assert.equal(queuedCost(heavy as never), topic.length + 1 + 20_000 + 16 + QUEUE_ENTRY_OVERHEAD);
  const limit = 4 * queuedCost({ topic, payload: new Uint8Array(0) } as never);
  await withBroker(async (b) => {
    const c = await connected(b, "longq", { clean: false, remoteAddress: "192.0.2.9:1" });
    await subscribe(c, [["long/#", 1]]);
    c.close();
    await waitFor(() => b.sessions.get("longq")?.client === null, 2000, "longq to go offline");
    const pub = await connected(b, "longpub");
    for (let i = 0; i < 10; i++) await publishAcked(pub, topic, new Uint8Array(0), 1);
    const queued = b.sessions.get("longq")!.queueLength;
    console.log(
      `10 empty messages on a 60,000-character topic into a ${limit} B total: ${queued} queued`,
    );
    assert.equal(queued, 4);
    pub.close();
  }, { options: { maxQueuedBytesTotal: limit, maxTopicLength: 65535 } });
});
