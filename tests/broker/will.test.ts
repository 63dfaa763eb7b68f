/** Will messages: when they are published, and how. */
import assert from "node:assert/strict";
import type { Packet, QoS, Will } from "../../src/codec/packets.ts";
import {
  assertNone,
  connected,
  disconnect,
  drop,
  MemoryClient,
  subscribe,
  text,
  withBroker,
} from "./harness.ts";

const enc = new TextEncoder();

function will(topic: string, payload: string, qos: QoS = 0, retain = false): Partial<Packet> {
  const w: Will = { topic, payload: enc.encode(payload), qos, retain };
  return { will: w } as Partial<Packet>;
}

Deno.test("the will is published when the connection closes without DISCONNECT [MQTT-3.1.2-8]", async () => {
  await withBroker(async (b) => {
    const watcher = await connected(b, "watcher");
    await subscribe(watcher, [["will/#", 0]]);
    const c = await connected(b, "dying", { extra: will("will/dying", "gone") });
    await drop(c);
    const m = await watcher.next("publish");
    assert.equal(m.topic, "will/dying");
    assert.equal(text(m), "gone");
    assert.equal(m.retain, false, "will retain 0 [MQTT-3.1.2-16]");
    watcher.close();
  });
});

Deno.test("the will is not published after DISCONNECT [MQTT-3.14.4-3]", async () => {
  await withBroker(async (b) => {
    const watcher = await connected(b, "watcher");
    await subscribe(watcher, [["will/#", 0]]);
    const c = await connected(b, "polite", { extra: will("will/polite", "gone") });
    await disconnect(c);
    // Absence tested: no will.
    await assertNone(watcher, "publish");
    watcher.close();
  });
});

Deno.test("the will is published once, not again when the session is resumed and closed cleanly", async () => {
  await withBroker(async (b) => {
    const watcher = await connected(b, "watcher");
    await subscribe(watcher, [["will/#", 0]]);
    const c = await connected(b, "once", { clean: false, extra: will("will/once", "w") });
    await drop(c);
    await watcher.next("publish");
    const back = await connected(b, "once", { clean: false });
    await drop(back); // the new connection has no will
    await assertNone(watcher, "publish");
    watcher.close();
  });
});

Deno.test("a retained will is stored as the retained message [MQTT-3.1.2-17]", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "ret", { extra: will("will/ret", "last words", 1, true) });
    await drop(c);
    assert.equal(b.stats.retained, 1);
    const late = await connected(b, "late");
    await subscribe(late, [["will/ret", 1]]);
    const m = await late.next("publish");
    assert.equal(text(m), "last words");
    assert.equal(m.retain, true);
    assert.equal(m.qos, 1);
    late.close();
  });
});

Deno.test("the will is delivered at min(will QoS, subscription QoS)", async () => {
  await withBroker(async (b) => {
    const s2 = await connected(b, "s2");
    await subscribe(s2, [["will/q", 2]]);
    const s1 = await connected(b, "s1");
    await subscribe(s1, [["will/q", 1]]);
    const c = await connected(b, "q", { extra: will("will/q", "w", 2) });
    await drop(c);
    const m2 = await s2.next("publish");
    assert.equal(m2.qos, 2);
    const m1 = await s1.next("publish");
    assert.equal(m1.qos, 1);
    s1.close();
    s2.close();
  });
});

Deno.test("a QoS 1 will is queued for an offline persistent subscriber", async () => {
  await withBroker(async (b) => {
    const sub = await connected(b, "offsub", { clean: false });
    await subscribe(sub, [["will/off", 1]]);
    await drop(sub);
    const c = await connected(b, "dies", { extra: will("will/off", "queued", 1) });
    await drop(c);
    const back = await connected(b, "offsub", { clean: false });
    const m = await back.next("publish");
    assert.equal(text(m), "queued");
    assert.equal(m.qos, 1);
    back.close();
  });
});

Deno.test("the will is published when the broker closes the connection for a protocol error", async () => {
  await withBroker(async (b) => {
    const watcher = await connected(b, "watcher");
    await subscribe(watcher, [["will/#", 0]]);
    const c = await connected(b, "violator", { extra: will("will/violator", "bad") });
    await c.send({
      type: "connect",
      protocolName: "MQTT",
      protocolVersion: 4,
      clean: true,
      keepalive: 0,
      clientId: "violator",
    });
    await c.waitClosed();
    assert.equal(text(await watcher.next("publish")), "bad");
    watcher.close();
  });
});

Deno.test("the will of a connection taken over by a new one with the same id is published", async () => {
  await withBroker(async (b) => {
    const watcher = await connected(b, "watcher");
    await subscribe(watcher, [["will/#", 0]]);
    const old = await connected(b, "twin", { extra: will("will/twin", "replaced") });
    const fresh = await connected(b, "twin");
    await old.waitClosed();
    assert.equal(text(await watcher.next("publish")), "replaced");
    fresh.close();
    watcher.close();
  });
});

Deno.test("a will the authorizer does not allow is dropped", async () => {
  await withBroker(async (b) => {
    const watcher = await connected(b, "watcher");
    await subscribe(watcher, [["#", 0]]);
    const c = await connected(b, "nope", { extra: will("forbidden/will", "x", 0, true) });
    await drop(c);
    // Absence tested: the will is neither delivered nor retained.
    await assertNone(watcher, "publish");
    assert.equal(b.stats.retained, 0);
    watcher.close();
  }, {
    authorizer: {
      canPublish: (_c, topic) => !topic.startsWith("forbidden/"),
      canSubscribe: () => true,
    },
  });
});

Deno.test("a CONNECT whose will topic has a wildcard is refused by closing the connection", async () => {
  await withBroker(async (b) => {
    const c = new MemoryClient(b);
    await c.send({
      type: "connect",
      protocolName: "MQTT",
      protocolVersion: 4,
      clean: true,
      keepalive: 0,
      clientId: "wildwill",
      ...will("will/+", "x"),
    } as Packet);
    await c.waitClosed();
    assert.deepEqual(c.pending("connack"), []);
    assert.equal(b.stats.sessions, 0);
  });
});

Deno.test("a refused connection's will is not published", async () => {
  await withBroker(async (b) => {
    const watcher = await connected(b, "watcher");
    await subscribe(watcher, [["will/#", 0]]);
    const c = new MemoryClient(b);
    const ack = await c.connect("refused", true, will("will/refused", "x"));
    assert.equal(ack.reasonCode, 5);
    await c.waitClosed();
    await assertNone(watcher, "publish");
    watcher.close();
  }, {
    authenticator: {
      authenticate: (r) => r.clientId === "refused" ? { ok: false, reasonCode: 5 } : { ok: true },
    },
  });
});
