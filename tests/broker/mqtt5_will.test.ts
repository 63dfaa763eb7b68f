/**
 * MQTT 5.0 wills: the Will Delay Interval (published when the delay or the session ends,
 * whichever is first; never when the session is resumed in time), the will properties on the
 * PUBLISH, a waiting will kept through a restart and published by a node that adopts the session.
 */
import assert from "node:assert/strict";
import type { Broker } from "../../src/broker/broker.ts";
import type { ClusterHost, ClusterLink } from "../../src/broker/ports/cluster.ts";
import type { Properties, Will } from "../../src/codec/packets.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import {
  connected,
  drop,
  makeBroker,
  MemoryClient,
  quietWindow,
  sqliteStore,
  subscribe,
  text,
  waitFor,
  withBroker,
  withTempDir,
} from "./harness.ts";
import { connected5 } from "./mqtt5_harness.ts";

const enc = new TextEncoder();

function will(topic: string, payload: string, properties?: Properties): Will {
  return { topic, payload: enc.encode(payload), qos: 1, retain: false, properties };
}

/** A 5.0 client with `w` as its will and a session that lives `expiry` seconds. */
async function withWill(b: Broker, id: string, w: Will, expiry?: number, clean = true) {
  const props = expiry === undefined ? undefined : { sessionExpiryInterval: expiry };
  return (await connected5(b, id, props, { will: w, clean })).c;
}

/** A 5.0 subscriber of `will/#`. */
async function watcher(b: Broker): Promise<MemoryClient> {
  const { c } = await connected5(b, "watcher");
  await subscribe(c, [["will/#", 1]]);
  return c;
}

Deno.test("a delayed will is published once its Will Delay Interval has passed, not at the close [MQTT-3.1.3-9] [MQTT-3.1.2-8]", async () => {
  await withBroker(async (b) => {
    const w = await watcher(b);
    const c = await withWill(b, "late", will("will/late", "gone", { willDelayInterval: 1 }), 60);
    const closedAt = Date.now();
    await drop(c);
    const m = await w.next("publish", 4000);
    assert.equal(text(m), "gone");
    assert.ok(Date.now() - closedAt >= 1000, `published after ${Date.now() - closedAt} ms`);
    w.close();
  });
});

Deno.test("the will carries its properties, in order, but not the Will Delay Interval [3.1.3.2] [MQTT-3.3.2-18]", async () => {
  await withBroker(async (b) => {
    const w = await watcher(b);
    const props: Properties = {
      willDelayInterval: 1,
      payloadFormatIndicator: 1,
      messageExpiryInterval: 120,
      contentType: "text/plain",
      responseTopic: "reply/here",
      correlationData: new Uint8Array([0, 1, 2, 255]),
      userProperties: [["b", "2"], ["a", "1"], ["b", "3"]],
    };
    const c = await withWill(b, "props", will("will/props", "gone", props), 60);
    await drop(c);
    const m = await w.next("publish", 4000);
    const { willDelayInterval: _, messageExpiryInterval: __, ...rest } = props;
    const { messageExpiryInterval, ...got } = m.properties!;
    assert.deepEqual(got, rest);
    // The remaining lifetime: at most what the will said (3.3.2.3.3).
    assert.ok(
      messageExpiryInterval! <= 120 && messageExpiryInterval! >= 118,
      `${messageExpiryInterval}`,
    );
    w.close();
  });
});

Deno.test("a will waiting for its delay is not sent when the client resumes the session in time [MQTT-3.1.3-9]", async () => {
  await withBroker(async (b) => {
    const w = await watcher(b);
    const c = await withWill(
      b,
      "back",
      will("will/back", "should not", { willDelayInterval: 1 }),
      60,
    );
    // A control will with the same delay, dropped at the same time: it falls due in the same tick.
    const control = await withWill(
      b,
      "control",
      will("will/control", "due", { willDelayInterval: 1 }),
      60,
    );
    await drop(c);
    await drop(control);
    const { c: again, ack } = await connected5(b, "back", { sessionExpiryInterval: 60 }, {
      clean: false,
    });
    assert.equal(ack.sessionPresent, true);
    const m = await w.next("publish", 4000);
    assert.equal(m.topic, "will/control");
    // Absence tested: the resumed session's will was due in the same tick and never comes.
    await quietWindow(200);
    assert.deepEqual(w.pending("publish"), []);
    again.close();
    w.close();
  });
});

Deno.test("a delayed will is published when the session ends before the delay does [MQTT-3.1.3-9]", async () => {
  await withBroker(async (b) => {
    const w = await watcher(b);
    const c = await withWill(
      b,
      "short",
      will("will/short", "session over", { willDelayInterval: 3600 }),
      1,
    );
    await drop(c);
    const m = await w.next("publish", 4000);
    assert.equal(text(m), "session over");
    assert.equal(b.sessions.has("short"), false, "the session expired");
    w.close();
  });
});

Deno.test("a delayed will of a session that ends with the connection (expiry 0) is published at once [MQTT-3.1.3-9]", async () => {
  await withBroker(async (b) => {
    const w = await watcher(b);
    const c = await withWill(b, "brief", will("will/brief", "now", { willDelayInterval: 3600 }));
    await drop(c);
    assert.equal(text(await w.next("publish", 900)), "now");
    w.close();
  });
});

Deno.test("taken over by Clean Start 0: a delayed will is not published, the session continues [MQTT-3.1.4-3] [MQTT-3.1.3-9]", async () => {
  await withBroker(async (b) => {
    const w = await watcher(b);
    await withWill(b, "twin", will("will/twin", "should not", { willDelayInterval: 1 }), 60);
    const control = await withWill(
      b,
      "control",
      will("will/control", "due", { willDelayInterval: 1 }),
      60,
    );
    const { c: second, ack } = await connected5(b, "twin", { sessionExpiryInterval: 60 }, {
      clean: false,
    });
    assert.equal(ack.sessionPresent, true);
    await drop(control);
    assert.equal((await w.next("publish", 4000)).topic, "will/control");
    // Absence tested: the first connection's will was cancelled by the takeover.
    await quietWindow(200);
    assert.deepEqual(w.pending("publish"), []);
    second.close();
    w.close();
  });
});

Deno.test("taken over by Clean Start 1: the old session ends, so its delayed will is published at once [MQTT-3.1.4-3] [MQTT-3.1.3-9]", async () => {
  await withBroker(async (b) => {
    const w = await watcher(b);
    await withWill(b, "twin", will("will/twin", "ended", { willDelayInterval: 3600 }), 60);
    const { c: second, ack } = await connected5(b, "twin", { sessionExpiryInterval: 60 });
    assert.equal(ack.sessionPresent, false);
    assert.equal(text(await w.next("publish", 900)), "ended");
    second.close();
    w.close();
  });
});

Deno.test("DISCONNECT 0x04 keeps a delayed will, published after the delay [MQTT-3.1.2-8] [MQTT-3.1.3-9]", async () => {
  await withBroker(async (b) => {
    const w = await watcher(b);
    const c = await withWill(b, "asks", will("will/asks", "please", { willDelayInterval: 1 }), 60);
    const at = Date.now();
    await c.send({ type: "disconnect", reasonCode: 0x04 });
    await c.waitClosed();
    assert.equal(text(await w.next("publish", 4000)), "please");
    assert.ok(Date.now() - at >= 1000);
    w.close();
  });
});

Deno.test("a 3.1.1 subscriber gets a 5.0 client's delayed will (without properties) [MQTT-3.1.3-9]", async () => {
  await withBroker(async (b) => {
    const old = await connected(b, "old");
    await subscribe(old, [["will/#", 0]]);
    const c = await withWill(
      b,
      "mixed",
      will("will/mixed", "gone", {
        willDelayInterval: 1,
        userProperties: [["k", "v"]],
      }),
      60,
    );
    await drop(c);
    const m = await old.next("publish", 4000);
    assert.equal(text(m), "gone");
    assert.equal(m.properties, undefined);
    old.close();
  });
});

Deno.test("a waiting delayed will survives a restart of the broker (SQLite) and is published when due, as its user [MQTT-3.1.3-9]", async () => {
  await withTempDir(async (dir) => {
    // Only alice may publish to will/alice: the restored will must still be hers.
    const authorizer = {
      canPublish: (c: { username?: string }, t: string) =>
        t !== "will/alice" || c.username === "alice",
      canSubscribe: () => true,
    };
    const first = makeBroker({ store: sqliteStore(dir), authorizer });
    await first.start();
    const { c: w0 } = await connected5(first, "watcher", { sessionExpiryInterval: 600 }, {
      clean: false,
    });
    await subscribe(w0, [["will/#", 1]]);
    w0.close();
    const { c } = await connected5(first, "alice-dev", { sessionExpiryInterval: 600 }, {
      will: will("will/alice", "after restart", { willDelayInterval: 2 }),
      username: "alice",
    });
    c.close();
    await waitFor(() => first.sessions.get("alice-dev")?.client === null, 2000, "offline");
    await first.close();

    const second = makeBroker({ store: sqliteStore(dir), authorizer });
    await second.start();
    try {
      const { c: w } = await connected5(second, "watcher", { sessionExpiryInterval: 600 }, {
        clean: false,
      });
      const m = await w.next("publish", 5000);
      assert.equal(m.topic, "will/alice");
      assert.equal(text(m), "after restart");
      w.close();
    } finally {
      await second.close();
    }
  });
});

Deno.test("a delayed will whose session expired while the broker was down is published at start [MQTT-3.1.3-9]", async () => {
  await withTempDir(async (dir) => {
    const first = makeBroker({ store: sqliteStore(dir) });
    await first.start();
    const { c: w0 } = await connected5(first, "watcher", { sessionExpiryInterval: 600 }, {
      clean: false,
    });
    await subscribe(w0, [["will/#", 1]]);
    w0.close();
    const c = await withWill(
      first,
      "gone",
      will("will/gone", "expired meanwhile", { willDelayInterval: 3600 }),
      1,
    );
    c.close();
    await waitFor(() => first.sessions.get("gone")?.client === null, 2000, "offline");
    await first.close();
    // Absence of the broker is what is waited for: the session's 1 s expiry passes meanwhile.
    await new Promise((r) => setTimeout(r, 1100));

    const second = makeBroker({ store: sqliteStore(dir) });
    await second.start();
    try {
      assert.equal(second.sessions.has("gone"), false);
      const { c: w } = await connected5(second, "watcher", { sessionExpiryInterval: 600 }, {
        clean: false,
      });
      assert.equal(text(await w.next("publish", 2000)), "expired meanwhile");
      w.close();
    } finally {
      await second.close();
    }
  });
});

/** A cluster link that only hands its host to the test. */
function fakeCluster(onStart: (h: ClusterHost) => void): ClusterLink {
  return {
    start: (h) => Promise.resolve(onStart(h)),
    stop: () => Promise.resolve(),
    routeAdded: () => {},
    routeRemoved: () => {},
    forward: () => {},
    acquireSession: () => Promise.resolve(),
    retainedChanged: () => {},
  };
}

Deno.test("a node adopting a dead node's session honours the will's delay: not at once, but when due [MQTT-3.1.3-9]", async () => {
  let host: ClusterHost | undefined;
  await withBroker(async (b) => {
    const w = await watcher(b);
    const adoptedAt = Date.now();
    // The dead node's connection was open (disconnectedAt null): its will is due after the delay.
    host!.adoptSession({
      session: {
        clientId: "orphan",
        expiryInterval: 600,
        disconnectedAt: null,
        protocolVersion: 5,
        will: will("will/orphan", "late", { willDelayInterval: 1 }),
        username: "u",
      },
      subscriptions: [],
      outbound: [],
      inboundQos2: [],
    });
    // And one that was already waiting there, due 1 s ago: published at the next tick.
    host!.adoptSession({
      session: {
        clientId: "waiting",
        expiryInterval: 600,
        disconnectedAt: Date.now() - 5000,
        protocolVersion: 5,
        will: will("will/waiting", "overdue"),
        willDueAt: Date.now() - 1000,
      },
      subscriptions: [],
      outbound: [],
      inboundQos2: [],
    });
    // Both may fall due in the same tick (the tick runs once a second from the start).
    const arrived = new Map<string, number>();
    for (let n = 0; n < 2; n++) arrived.set(text(await w.next("publish", 4000)), Date.now());
    assert.ok(arrived.has("overdue"));
    assert.ok(arrived.get("late")! - adoptedAt >= 1000, "the delay was honoured");
    w.close();
  }, { store: new MemoryStore(), cluster: fakeCluster((h) => host = h) });
});
