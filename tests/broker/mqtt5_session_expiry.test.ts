/**
 * MQTT 5.0 Clean Start and Session Expiry Interval: from the CONNECT (capped by the configured
 * interval), changed at DISCONNECT, kept in the store.
 */
import assert from "node:assert/strict";
import { ReasonCode } from "../../src/codec/reason_codes.ts";
import {
  connected,
  disconnect,
  drop,
  makeBroker,
  MemoryClient,
  publishAcked,
  sqliteStore,
  subscribe,
  text,
  waitFor,
  withBroker,
  withTempDir,
} from "./harness.ts";
import { connect5, connected5, expectDisconnect } from "./mqtt5_harness.ts";

Deno.test("Session Expiry Interval absent: the session ends with the connection, even with Clean Start 0 [3.1.2.11.2]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "brief", undefined, { clean: false });
    await subscribe(c, [["t", 1]]);
    await drop(c);
    assert.equal(b.sessions.has("brief"), false);
    const { c: again, ack } = await connected5(b, "brief", undefined, { clean: false });
    assert.equal(ack.sessionPresent, false, "no session to resume [MQTT-3.1.2-6]");
    again.close();
  });
});

Deno.test("a session with an expiry outlives the connection and is resumed by Clean Start 0 [MQTT-3.1.2-5] [MQTT-3.2.2-3] [MQTT-3.1.2-23]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "keep", { sessionExpiryInterval: 60 });
    await subscribe(c, [["t", 1]]);
    await disconnect(c);
    assert.equal(b.sessions.get("keep")?.expiryInterval, 60);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "t", "while away", 1);
    const { c: back, ack } = await connected5(b, "keep", { sessionExpiryInterval: 60 }, {
      clean: false,
    });
    assert.equal(ack.sessionPresent, true);
    assert.equal(text(await back.next("publish")), "while away");
    back.close();
    pub.close();
  });
});

Deno.test("Clean Start 1 discards an existing session [MQTT-3.1.2-4] [MQTT-3.2.2-2]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "fresh", { sessionExpiryInterval: 60 });
    await subscribe(c, [["t", 1]]);
    await disconnect(c);
    const { c: again, ack } = await connected5(b, "fresh", { sessionExpiryInterval: 60 });
    assert.equal(ack.sessionPresent, false);
    assert.equal(b.sessions.get("fresh")?.subscriptions.size, 0);
    again.close();
  });
});

Deno.test("Clean Start 0 with expiry 0 resumes a stored session, which then ends with the connection", async () => {
  await withTempDir(async (dir) => {
    const b = makeBroker({ store: sqliteStore(dir) });
    await b.start();
    try {
      const { c } = await connected5(b, "once", { sessionExpiryInterval: 60 });
      await subscribe(c, [["t", 1]]);
      await disconnect(c);
      const { c: last, ack } = await connected5(b, "once", undefined, { clean: false });
      assert.equal(ack.sessionPresent, true);
      assert.equal(b.sessions.get("once")?.subscriptions.size, 1, "its subscriptions resumed");
      await disconnect(last);
      assert.equal(b.sessions.has("once"), false);
    } finally {
      await b.close();
    }
    // Nor is it in the store any more.
    const b2 = makeBroker({ store: sqliteStore(dir) });
    await b2.start();
    try {
      assert.equal(b2.sessions.has("once"), false);
    } finally {
      await b2.close();
    }
  });
});

Deno.test("the expiry is kept in the store: a restart restores the session with it", async () => {
  await withTempDir(async (dir) => {
    const b = makeBroker({ store: sqliteStore(dir) });
    await b.start();
    try {
      const { c } = await connected5(b, "durable", { sessionExpiryInterval: 3600 });
      await subscribe(c, [["t", 1]]);
      await disconnect(c);
    } finally {
      await b.close();
    }
    const b2 = makeBroker({ store: sqliteStore(dir) });
    await b2.start();
    try {
      assert.equal(b2.sessions.get("durable")?.expiryInterval, 3600);
      assert.equal(b2.sessions.get("durable")?.protocolVersion, 5);
      const { c, ack } = await connected5(b2, "durable", { sessionExpiryInterval: 3600 }, {
        clean: false,
      });
      assert.equal(ack.sessionPresent, true);
      c.close();
    } finally {
      await b2.close();
    }
  });
});

Deno.test("a Session Expiry Interval in DISCONNECT replaces the CONNECT's [3.14.2.2.2]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "change", { sessionExpiryInterval: 60 });
    await c.send({ type: "disconnect", properties: { sessionExpiryInterval: 1000 } });
    await c.waitClosed();
    assert.equal(b.sessions.get("change")?.expiryInterval, 1000);
    // Capped like the CONNECT's.
    const { c: c2 } = await connected5(b, "capped", { sessionExpiryInterval: 60 });
    await c2.send({ type: "disconnect", properties: { sessionExpiryInterval: 0xffffffff } });
    await c2.waitClosed();
    assert.equal(b.sessions.get("capped")?.expiryInterval, 7200);
  });
});

Deno.test("DISCONNECT with Session Expiry Interval 0 ends a persistent session with the connection", async () => {
  await withTempDir(async (dir) => {
    const b = makeBroker({ store: sqliteStore(dir) });
    await b.start();
    try {
      const { c } = await connected5(b, "bye", { sessionExpiryInterval: 60 });
      await subscribe(c, [["t", 1]]);
      await c.send({ type: "disconnect", properties: { sessionExpiryInterval: 0 } });
      await c.waitClosed();
      assert.equal(b.sessions.has("bye"), false);
    } finally {
      await b.close();
    }
    const b2 = makeBroker({ store: sqliteStore(dir) });
    await b2.start();
    try {
      assert.equal(b2.sessions.has("bye"), false, "not restored from the store");
    } finally {
      await b2.close();
    }
  });
});

Deno.test("a shortened expiry at DISCONNECT makes the session expire [3.1.2.11.2]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "soon", { sessionExpiryInterval: 3600 });
    await c.send({ type: "disconnect", properties: { sessionExpiryInterval: 1 } });
    await c.waitClosed();
    assert.equal(b.sessions.has("soon"), true);
    // The broker's tick expires it: after 1 s, within a couple of ticks.
    await waitFor(() => !b.sessions.has("soon"), 4000, "the session to expire");
  });
});

Deno.test("DISCONNECT setting an expiry after CONNECT had 0 is a protocol error: DISCONNECT 0x82, will published [MQTT-3.14.2-2]", async () => {
  await withBroker(async (b) => {
    const { c: watch } = await connected5(b, "watch");
    await subscribe(watch, [["will", 0]]);
    const c = new MemoryClient(b, 5);
    await c.send(connect5("zero", {
      will: { topic: "will", payload: new TextEncoder().encode("w"), qos: 0, retain: false },
    }));
    assert.equal((await c.next("connack")).reasonCode, 0);
    await c.send({ type: "disconnect", properties: { sessionExpiryInterval: 10 } });
    await expectDisconnect(c, ReasonCode.ProtocolError);
    assert.equal(text(await watch.next("publish")), "w");
    assert.equal(b.sessions.has("zero"), false);
    watch.close();
  });
});

Deno.test("3.1.1 clean session 0 still gets the configured expiry", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "old", { clean: false });
    assert.equal(b.sessions.get("old")?.expiryInterval, 7200);
    c.close();
  });
});
