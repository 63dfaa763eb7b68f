/**
 * Cases every Store implementation must pass. Each implementation's test file calls
 * storeContract() once; the cases only use the Store interface, so the same file serves the
 * memory, SQLite and (later) Redis stores.
 *
 * `make` returns a store that is not opened yet. `reopen`, when given, returns another not yet
 * opened store over the same backing storage; every case then also checks its final state
 * after close + reopen.
 */
import assert from "node:assert/strict";
import {
  EXPIRY_NEVER,
  type LoadedSession,
  type OutboundEntry,
  type SessionRecord,
  type StoredMessage,
  type SubscriptionRecord,
} from "../../src/broker/model.ts";
import type { Store } from "../../src/broker/ports/store.ts";

export interface StoreFixture {
  store: Store;
  reopen?: () => Promise<Store>;
  cleanup: () => Promise<void>;
}

interface Ctx {
  store: Store;
  /**
   * Flushes, and if the implementation is persistent closes and reopens it; returns the store
   * to verify against. Lets every case check the same expectations before and after restart.
   */
  restart(): Promise<Store>;
}

export function storeContract(name: string, make: () => Promise<StoreFixture>): void {
  const test = (title: string, fn: (ctx: Ctx) => Promise<void>) =>
    Deno.test(`${name}: ${title}`, async () => {
      const fx = await make();
      let current = fx.store;
      await current.open();
      try {
        await fn({
          store: current,
          restart: async () => {
            await current.flush();
            if (!fx.reopen) return current;
            await current.close();
            current = await fx.reopen();
            await current.open();
            return current;
          },
        });
      } finally {
        await current.close();
        await fx.cleanup();
      }
    });

  /** Runs `check` on the live store and, when persistent, again after a restart. */
  const bothWays = async (ctx: Ctx, check: (s: Store) => Promise<void>) => {
    await ctx.store.flush();
    await check(ctx.store);
    await check(await ctx.restart());
  };

  test("empty store loads nothing; unknown session is null", async (ctx) => {
    await bothWays(ctx, async (s) => {
      assert.deepEqual(await s.loadSessions(), []);
      assert.deepEqual(await s.loadRetained(), []);
      assert.equal(await s.loadSession("nobody"), null);
    });
  });

  test("an atomic unit's mutations are all durable together", async (ctx) => {
    // The shape of a QoS 2 PUBLISH routed to many sessions: copies, then the inbound packet id.
    const s = ctx.store;
    s.saveSession(session("pub"));
    for (let i = 0; i < 20; i++) s.saveSession(session(`sub${i}`));
    await s.flush();
    s.beginUnit();
    s.beginUnit(); // nested: only the outer end closes it
    for (let i = 0; i < 20; i++) s.putOutbound(`sub${i}`, entry(1, { qos: 2 }));
    s.endUnit();
    s.addInboundQos2("pub", 7);
    s.endUnit();
    await bothWays(ctx, async (st) => {
      assert.deepEqual((await st.loadSession("pub"))?.inboundQos2, [7]);
      for (let i = 0; i < 20; i++) {
        assert.equal((await st.loadSession(`sub${i}`))?.outbound.length, 1);
      }
    });
  });

  test("flush resolves with nothing pending, and concurrently", async ({ store }) => {
    await store.flush();
    store.saveSession(session("a"));
    await Promise.all([store.flush(), store.flush(), store.flush()]);
    await store.flush();
  });

  test("sessions: save, replace, load, delete", async (ctx) => {
    const { store } = ctx;
    const a1 = session("a", { expiryInterval: 60, disconnectedAt: 1_000, protocolVersion: 5 });
    const a2: SessionRecord = {
      clientId: "a",
      expiryInterval: 120,
      disconnectedAt: null,
      protocolVersion: 5,
      will: {
        topic: "will/a",
        payload: bytes([1, 2, 3]),
        qos: 1,
        retain: true,
        properties: { willDelayInterval: 5, userProperties: [["k", "v"]] },
      },
      node: "node-1",
    };
    const b = session("b", { protocolVersion: 4 });
    const c = session("c", { protocolVersion: 3, expiryInterval: EXPIRY_NEVER });
    store.saveSession(a1);
    store.saveSession(b);
    store.saveSession(c);
    store.saveSession(a2);
    store.deleteSession("c");
    store.deleteSession("never-existed");
    await bothWays(ctx, async (s) => {
      assert.deepEqual(await s.loadSession("a"), loaded(a2));
      assert.deepEqual(await s.loadSession("b"), loaded(b));
      assert.equal(await s.loadSession("c"), null);
      assert.deepEqual(sortSessions(await s.loadSessions()), [loaded(a2), loaded(b)]);
    });
  });

  test("a delayed will waiting offline keeps its due time and user [MQTT-3.1.3-9]", async (ctx) => {
    const { store } = ctx;
    const rec: SessionRecord = {
      clientId: "w",
      expiryInterval: 600,
      disconnectedAt: 1_700_000_000_000,
      protocolVersion: 5,
      will: {
        topic: "will/w",
        payload: bytes([9]),
        qos: 1,
        retain: false,
        properties: { willDelayInterval: 30, contentType: "text/plain" },
      },
      willDueAt: 1_700_000_030_000,
      username: "alice",
      node: "node-1",
    };
    store.saveSession(rec);
    await bothWays(ctx, async (s) => {
      assert.deepEqual(await s.loadSession("w"), loaded(rec));
    });
  });

  test("deleteSession removes subscriptions, outbound and inbound ids", async (ctx) => {
    const { store } = ctx;
    store.saveSession(session("a"));
    store.addSubscription("a", { filter: "x/#", qos: 1 });
    store.putOutbound("a", entry(1));
    store.addInboundQos2("a", 10);
    store.saveSession(session("keep"));
    store.addSubscription("keep", { filter: "k", qos: 0 });
    await store.flush();
    store.deleteSession("a");
    await bothWays(ctx, async (s) => {
      assert.equal(await s.loadSession("a"), null);
      assert.deepEqual(await s.loadSession("keep"), {
        ...loaded(session("keep")),
        subscriptions: [{ filter: "k", qos: 0 }],
      });
    });
    // A session created again under the same id starts empty.
    const s = await ctx.restart();
    s.saveSession(session("a"));
    await s.flush();
    assert.deepEqual(await s.loadSession("a"), loaded(session("a")));
  });

  test("deleteSession then re-creation in the same batch keeps only the later state", async (ctx) => {
    const { store } = ctx;
    store.saveSession(session("a"));
    store.addSubscription("a", { filter: "old", qos: 1 });
    store.putOutbound("a", entry(1));
    store.addInboundQos2("a", 1);
    store.deleteSession("a");
    store.saveSession(session("a", { expiryInterval: 7 }));
    store.addSubscription("a", { filter: "new", qos: 2 });
    store.putOutbound("a", entry(2));
    store.addInboundQos2("a", 2);
    await bothWays(ctx, async (s) => {
      assert.deepEqual(await s.loadSession("a"), {
        session: session("a", { expiryInterval: 7 }),
        subscriptions: [{ filter: "new", qos: 2 }],
        outbound: [entry(2)],
        inboundQos2: [2],
      });
    });
  });

  test("subscriptions: add, replace same filter, remove", async (ctx) => {
    const { store } = ctx;
    store.saveSession(session("a"));
    const full: SubscriptionRecord = {
      filter: "a/+/c",
      qos: 2,
      noLocal: true,
      retainAsPublished: true,
      retainHandling: 2,
      subscriptionId: 268_435_455,
    };
    store.addSubscription("a", { filter: "a/+/c", qos: 0 });
    store.addSubscription("a", { filter: "#", qos: 1 });
    store.addSubscription("a", { filter: "gone", qos: 1 });
    store.addSubscription("a", { filter: "$share/g/t", qos: 1, retainHandling: 0 });
    await store.flush();
    store.addSubscription("a", full);
    store.removeSubscription("a", "gone");
    store.removeSubscription("a", "not-there");
    await bothWays(ctx, async (s) => {
      const got = await s.loadSession("a");
      assert.ok(got);
      assert.deepEqual(sortSubs(got.subscriptions), [
        { filter: "#", qos: 1 },
        { filter: "$share/g/t", qos: 1, retainHandling: 0 },
        full,
      ]);
    });
  });

  test("outbound: put, replace by seq, remove, ordered by seq", async (ctx) => {
    const { store } = ctx;
    store.saveSession(session("a"));
    store.putOutbound("a", entry(3));
    store.putOutbound("a", entry(1));
    store.putOutbound("a", entry(20));
    store.putOutbound("a", entry(2));
    await store.flush();
    store.putOutbound("a", entry(2, { state: "sent", packetId: 7, qos: 1 }));
    store.removeOutbound("a", 1);
    // Put and remove in one batch: never visible.
    store.putOutbound("a", entry(4));
    store.removeOutbound("a", 4);
    // Remove and put again in one batch: the put wins.
    store.removeOutbound("a", 3);
    store.putOutbound("a", entry(3, { state: "released", packetId: 9, qos: 2 }));
    store.removeOutbound("a", 999);
    store.putOutbound("other", entry(1));
    store.saveSession(session("other"));
    await bothWays(ctx, async (s) => {
      const got = await s.loadSession("a");
      assert.ok(got);
      assert.deepEqual(got.outbound, [
        entry(2, { state: "sent", packetId: 7, qos: 1 }),
        entry(3, { state: "released", packetId: 9, qos: 2 }),
        entry(20),
      ]);
      assert.deepEqual((await s.loadSession("other"))?.outbound, [entry(1)]);
    });
  });

  test("outbound: queued, sent and released states with packet ids", async (ctx) => {
    const { store } = ctx;
    store.saveSession(session("a"));
    const entries = [
      entry(1, { state: "released", packetId: 1, qos: 2 }),
      entry(2, { state: "sent", packetId: 65535, qos: 2 }),
      entry(3, { state: "sent", packetId: 2, qos: 1, retain: true }),
      entry(4, { state: "queued", qos: 0 }),
      entry(5, { state: "queued", qos: 1 }),
      // MQTT 5: the Subscription Identifiers a delivery carries (MQTT-3.3.4-3).
      entry(6, { state: "sent", packetId: 3, qos: 1, subscriptionIds: [1, 268_435_455] }),
      entry(7, { state: "queued", qos: 2, subscriptionIds: [42] }),
    ];
    for (const e of entries) store.putOutbound("a", e);
    await bothWays(ctx, async (s) => {
      assert.deepEqual((await s.loadSession("a"))?.outbound, entries);
    });
  });

  test("inbound QoS 2 ids: add, duplicate add, remove", async (ctx) => {
    const { store } = ctx;
    store.saveSession(session("a"));
    store.addInboundQos2("a", 1);
    store.addInboundQos2("a", 2);
    store.addInboundQos2("a", 65535);
    await store.flush();
    store.addInboundQos2("a", 1);
    store.removeInboundQos2("a", 2);
    store.removeInboundQos2("a", 3);
    store.addInboundQos2("a", 4);
    store.removeInboundQos2("a", 4);
    await bothWays(ctx, async (s) => {
      const got = await s.loadSession("a");
      assert.deepEqual([...(got?.inboundQos2 ?? [])].sort((x, y) => x - y), [1, 65535]);
    });
  });

  test("retained: set, replace, delete", async (ctx) => {
    const { store } = ctx;
    store.setRetained("a", message("m1", { topic: "a" }));
    store.setRetained("b", message("m2", { topic: "b" }));
    store.setRetained("c", message("m3", { topic: "c" }));
    await store.flush();
    store.setRetained("a", message("m4", { topic: "a", qos: 2 }));
    store.setRetained("b", null);
    store.setRetained("d", message("m5", { topic: "d" }));
    store.setRetained("d", null);
    store.setRetained("nothing", null);
    store.setRetained("e", null);
    store.setRetained("e", message("m6", { topic: "e" }));
    await bothWays(ctx, async (s) => {
      assert.deepEqual(sortRetained(await s.loadRetained()), [
        message("m4", { topic: "a", qos: 2 }),
        message("m3", { topic: "c" }),
        message("m6", { topic: "e" }),
      ]);
    });
  });

  test("binary payloads and MQTT 5 properties round-trip exactly", async (ctx) => {
    const { store } = ctx;
    const all = new Uint8Array(256).map((_, i) => i);
    const props = {
      payloadFormatIndicator: 1,
      messageExpiryInterval: 3600,
      contentType: "application/octet-stream",
      responseTopic: "reply/ü/😀",
      correlationData: bytes([0, 255, 0, 128, 10, 13]),
      subscriptionIdentifiers: [1, 268_435_455],
      userProperties: [["k", "v1"], ["k", "v2"], ["ключ", "значение"], ["", ""]] as [
        string,
        string,
      ][],
    };
    const rich = message("rich", {
      topic: "bin/ü/😀",
      payload: all,
      qos: 2,
      retain: true,
      properties: props,
      expiresAt: 1_900_000_000_123,
      origin: "publisher-1",
    });
    const empty = message("empty", { topic: "empty", payload: new Uint8Array(0) });
    const big = message("big", {
      topic: "big",
      payload: new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff),
    });
    store.saveSession({
      ...session("a", { protocolVersion: 5 }),
      will: { topic: "w", payload: all, qos: 2, retain: false, properties: props },
    });
    store.putOutbound("a", entry(1, { message: rich, qos: 2, retain: true }));
    store.putOutbound("a", entry(2, { message: empty }));
    store.putOutbound("a", entry(3, { message: big }));
    store.setRetained(rich.topic, rich);
    store.setRetained(empty.topic, empty);
    store.setRetained(big.topic, big);
    await bothWays(ctx, async (s) => {
      const got = await s.loadSession("a");
      assert.ok(got);
      assert.deepEqual(got.session.will, {
        topic: "w",
        payload: all,
        qos: 2,
        retain: false,
        properties: props,
      });
      assert.deepEqual(got.outbound, [
        entry(1, { message: rich, qos: 2, retain: true }),
        entry(2, { message: empty }),
        entry(3, { message: big }),
      ]);
      assert.ok(got.outbound[0].message.payload instanceof Uint8Array);
      assert.deepEqual(sortRetained(await s.loadRetained()), [big, rich, empty]);
    });
  });

  test("a 5.0 message with every property survives queued, in-flight and retained, as decoded from a socket chunk", async (ctx) => {
    const { store } = ctx;
    // The broker hands stores what the decoder made: payload and correlation data are views
    // into one larger read buffer, and a store must keep exactly their bytes.
    const chunk = new Uint8Array(4096).map((_, i) => (i * 31) & 0xff);
    const payload = chunk.subarray(100, 160);
    const correlation = chunk.subarray(2000, 2017);
    const props = {
      payloadFormatIndicator: 0,
      messageExpiryInterval: 7,
      contentType: "",
      responseTopic: "resp/ü",
      correlationData: correlation,
      userProperties: [["dup", "1"], ["z", ""], ["dup", "1"], ["a", "b"]] as [string, string][],
    };
    const expiresAt = 1_700_000_007_000;
    const m = message("every", { payload, qos: 2, properties: props, expiresAt });
    const expected = message("every", {
      payload: payload.slice(),
      qos: 2,
      properties: { ...props, correlationData: correlation.slice() },
      expiresAt,
    });
    store.saveSession(session("p", { protocolVersion: 5 }));
    store.putOutbound("p", entry(1, { message: m, qos: 2 }));
    store.putOutbound("p", entry(2, { message: m, qos: 1 }));
    await store.flush();
    // Sent: the same entry replaced with its packet id, as delivery does.
    store.putOutbound("p", entry(1, { message: m, qos: 2, state: "sent", packetId: 41 }));
    store.setRetained(m.topic, m);
    await bothWays(ctx, async (s) => {
      const got = await s.loadSession("p");
      assert.ok(got);
      assert.deepEqual(got.outbound, [
        entry(1, { message: expected, qos: 2, state: "sent", packetId: 41 }),
        entry(2, { message: expected, qos: 1 }),
      ]);
      const back = got.outbound[0].message;
      assert.deepEqual(
        back.properties?.userProperties,
        props.userProperties,
        "order and duplicates",
      );
      assert.ok(back.properties?.correlationData instanceof Uint8Array);
      assert.equal(back.properties?.correlationData?.byteLength, 17);
      assert.deepEqual(await s.loadRetained(), [expected]);
    });
  });

  test("deleteExpiredSessions honours expiry, never and connected sessions", async (ctx) => {
    const { store } = ctx;
    const now = 1_000_000;
    store.saveSession(session("expired", { expiryInterval: 10, disconnectedAt: now - 20_000 }));
    store.saveSession(session("zero", { expiryInterval: 0, disconnectedAt: now - 1 }));
    store.saveSession(session("alive", { expiryInterval: 100, disconnectedAt: now - 20_000 }));
    store.saveSession(session("never", { expiryInterval: EXPIRY_NEVER, disconnectedAt: 0 }));
    store.saveSession(session("connected", { expiryInterval: 10, disconnectedAt: null }));
    store.addSubscription("expired", { filter: "x", qos: 1 });
    store.putOutbound("expired", entry(1));
    store.addInboundQos2("expired", 5);
    store.addSubscription("alive", { filter: "y", qos: 1 });
    // Pending (unflushed) mutations count too.
    const deleted = await store.deleteExpiredSessions(now);
    assert.deepEqual([...deleted].sort(), ["expired", "zero"]);
    assert.deepEqual(await store.deleteExpiredSessions(now), []);
    await bothWays(ctx, async (s) => {
      assert.equal(await s.loadSession("expired"), null);
      assert.equal(await s.loadSession("zero"), null);
      assert.deepEqual(
        sortSessions(await s.loadSessions()).map((l) => l.session.clientId),
        ["alive", "connected", "never"],
      );
      assert.deepEqual((await s.loadSession("alive"))?.subscriptions, [{ filter: "y", qos: 1 }]);
    });
    const s = await ctx.restart();
    // Re-creating an expired id starts empty.
    s.saveSession(session("expired"));
    await s.flush();
    assert.deepEqual(await s.loadSession("expired"), loaded(session("expired")));
    // Far in the future only "never" and "connected" remain.
    const later = await s.deleteExpiredSessions(now + 1_000_000_000);
    assert.deepEqual([...later].sort(), ["alive", "expired"]);
    assert.deepEqual(
      sortSessions(await s.loadSessions()).map((l) => l.session.clientId),
      ["connected", "never"],
    );
  });

  test("callers mutating inputs or returned values cannot corrupt the store", async (ctx) => {
    const { store } = ctx;
    const rec = session("a");
    const sub: SubscriptionRecord = { filter: "f", qos: 1 };
    const e = entry(1);
    store.saveSession(rec);
    store.addSubscription("a", sub);
    store.putOutbound("a", e);
    store.addInboundQos2("a", 3);
    store.setRetained("t", message("r", { topic: "t" }));
    rec.expiryInterval = 999;
    sub.qos = 2;
    e.state = "sent";
    await store.flush();

    const first = await store.loadSession("a");
    assert.ok(first);
    first.session.expiryInterval = 5;
    first.subscriptions.push({ filter: "evil", qos: 0 });
    first.subscriptions[0].qos = 0;
    first.outbound.length = 0;
    first.inboundQos2.push(77);
    (await store.loadSessions()).length = 0;
    (await store.loadRetained()).pop();

    await bothWays(ctx, async (s) => {
      assert.deepEqual(await s.loadSession("a"), {
        session: session("a"),
        subscriptions: [{ filter: "f", qos: 1 }],
        outbound: [entry(1)],
        inboundQos2: [3],
      });
      assert.deepEqual(await s.loadRetained(), [message("r", { topic: "t" })]);
    });
  });

  test("many sessions and entries in one go", async (ctx) => {
    const { store } = ctx;
    const sessions = 50;
    const perSession = 100;
    for (let c = 0; c < sessions; c++) {
      const id = `c${String(c).padStart(3, "0")}`;
      store.saveSession(session(id));
      store.addSubscription(id, { filter: `t/${c}`, qos: 1 });
      for (let i = perSession; i >= 1; i--) store.putOutbound(id, entry(i));
      // Acknowledged half, as a live session would.
      for (let i = 1; i <= perSession; i += 2) store.removeOutbound(id, i);
    }
    for (let i = 0; i < 2_000; i++) {
      store.setRetained(`r/${i}`, message(`r${i}`, { topic: `r/${i}` }));
    }
    await bothWays(ctx, async (s) => {
      const all = sortSessions(await s.loadSessions());
      assert.equal(all.length, sessions);
      for (const l of all) {
        assert.deepEqual(
          l.outbound.map((e) => e.seq),
          Array.from({ length: perSession / 2 }, (_, i) => 2 * i + 2),
        );
      }
      assert.equal((await s.loadRetained()).length, 2_000);
    });
  });
}

// --- fixtures ------------------------------------------------------------------------------

export function bytes(values: number[]): Uint8Array {
  return new Uint8Array(values);
}

export function session(clientId: string, over: Partial<SessionRecord> = {}): SessionRecord {
  return {
    clientId,
    expiryInterval: 3600,
    disconnectedAt: 500,
    protocolVersion: 4,
    ...over,
  };
}

export function message(id: string, over: Partial<StoredMessage> = {}): StoredMessage {
  return {
    id,
    topic: "t/" + id,
    payload: new TextEncoder().encode("payload " + id),
    qos: 1,
    retain: false,
    createdAt: 1_700_000_000_000,
    ...over,
  };
}

export function entry(seq: number, over: Partial<OutboundEntry> = {}): OutboundEntry {
  return {
    seq,
    message: message(`m${seq}`),
    qos: 1,
    retain: false,
    state: "queued",
    ...over,
  };
}

function loaded(s: SessionRecord): LoadedSession {
  return { session: s, subscriptions: [], outbound: [], inboundQos2: [] };
}

function sortSessions(list: LoadedSession[]): LoadedSession[] {
  return [...list].sort((a, b) => cmp(a.session.clientId, b.session.clientId));
}

function sortSubs(list: SubscriptionRecord[]): SubscriptionRecord[] {
  return [...list].sort((a, b) => cmp(a.filter, b.filter));
}

function sortRetained(list: StoredMessage[]): StoredMessage[] {
  return [...list].sort((a, b) => cmp(a.topic, b.topic));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
