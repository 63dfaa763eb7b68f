/** The Authenticator and Authorizer ports as the core uses them. */
import assert from "node:assert/strict";
import type { AuthRequest } from "../../src/broker/ports/auth.ts";
import type { ClientInfo } from "../../src/broker/model.ts";
import {
  assertNone,
  connected,
  drop,
  MemoryClient,
  publish,
  publishAcked,
  subscribe,
  text,
  withBroker,
} from "./harness.ts";

const enc = new TextEncoder();

for (const code of [3, 4, 5]) {
  Deno.test(`an authenticator refusal with code ${code} is sent as CONNACK ${code} and the connection closed`, async () => {
    await withBroker(async (b) => {
      const c = new MemoryClient(b);
      const ack = await c.connect("who", true);
      assert.equal(ack.reasonCode, code);
      assert.equal(ack.sessionPresent, false);
      await c.waitClosed();
      assert.equal(b.stats.sessions, 0);
    }, { authenticator: { authenticate: () => ({ ok: false, reasonCode: code }) } });
  });
}

Deno.test("an asynchronous authenticator is awaited before CONNACK", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  await withBroker(async (b) => {
    const c = new MemoryClient(b);
    const ack = c.connect("slow", true);
    // Absence tested: no CONNACK while the authenticator has not answered.
    await assertNone(c, "connack", 50);
    release();
    assert.equal((await ack).reasonCode, 0);
    c.close();
  }, {
    authenticator: {
      authenticate: async () => {
        await gate;
        return { ok: true };
      },
    },
  });
});

Deno.test("the authenticator sees client id, user name, password, address and protocol level", async () => {
  const seen: AuthRequest[] = [];
  await withBroker(async (b) => {
    const c = new MemoryClient(b, 4, { remoteAddress: "10.1.2.3:5555" });
    const ack = await c.connect("ident", true, {
      username: "alice",
      password: enc.encode("secret"),
    } as never);
    assert.equal(ack.reasonCode, 0);
    c.close();
  }, { authenticator: { authenticate: (r) => (seen.push(r), { ok: true }) } });
  assert.equal(seen.length, 1);
  assert.equal(seen[0].clientId, "ident");
  assert.equal(seen[0].username, "alice");
  assert.deepEqual(seen[0].password, enc.encode("secret"));
  assert.equal(seen[0].remoteAddress, "10.1.2.3:5555");
  assert.equal(seen[0].transport, "memory");
  assert.equal(seen[0].protocolVersion, 4);
});

Deno.test("a user name established by the transport overrides the CONNECT's", async () => {
  const seen: (string | undefined)[] = [];
  await withBroker(async (b) => {
    const c = new MemoryClient(b, 4, { username: "cert-cn" });
    await c.connect("tls", true, { username: "claimed" } as never);
    c.close();
  }, { authenticator: { authenticate: (r) => (seen.push(r.username), { ok: true }) } });
  assert.deepEqual(seen, ["cert-cn"]);
});

Deno.test("a refused client does not take over the session of a connected client with the same id", async () => {
  await withBroker(async (b) => {
    const good = await connected(b, "victim", { extra: { username: "ok" } as never });
    const bad = new MemoryClient(b);
    assert.equal((await bad.connect("victim", true, { username: "evil" } as never)).reasonCode, 4);
    await bad.waitClosed();
    assert.equal(good.closed, false);
    await good.send({ type: "pingreq" });
    await good.next("pingresp");
    good.close();
  }, {
    authenticator: {
      authenticate: (r) => r.username === "evil" ? { ok: false, reasonCode: 4 } : { ok: true },
    },
  });
});

const denyTopics = {
  canPublish: (_c: ClientInfo, topic: string) => !topic.startsWith("secret/"),
  canSubscribe: (_c: ClientInfo, filter: string) => !filter.startsWith("secret/"),
};

Deno.test("a SUBSCRIBE the authorizer refuses gets SUBACK 0x80; the allowed filters are granted", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "sub");
    assert.deepEqual(await subscribe(c, [["open/t", 1], ["secret/t", 1], ["open/u", 2]]), [
      1,
      0x80,
      2,
    ]);
    assert.equal(b.stats.subscriptions, 2);
    c.close();
  }, { authorizer: denyTopics });
});

Deno.test("an unauthorized QoS 1 PUBLISH is acknowledged and dropped [MQTT-3.3.5-2]", async () => {
  await withBroker(async (b) => {
    const watcher = await connected(b, "watcher");
    await subscribe(watcher, [["#", 1]]);
    const pub = await connected(b, "pub");
    await pub.send(publish("secret/x", "no", 1, { packetId: 12 }));
    assert.equal((await pub.next("puback")).packetId, 12);
    // Absence tested: not delivered; the connection stays up.
    await assertNone(watcher, "publish");
    assert.equal(pub.closed, false);
    watcher.close();
    pub.close();
  }, { authorizer: { ...denyTopics, canSubscribe: () => true } });
});

Deno.test("an unauthorized QoS 2 PUBLISH completes its handshake and is dropped", async () => {
  await withBroker(async (b) => {
    const watcher = await connected(b, "watcher");
    await subscribe(watcher, [["#", 2]]);
    const pub = await connected(b, "pub");
    await publishAcked(pub, "secret/x", "no", 2);
    await assertNone(watcher, "publish");
    watcher.close();
    pub.close();
  }, { authorizer: { ...denyTopics, canSubscribe: () => true } });
});

Deno.test("an unauthorized QoS 0 PUBLISH is dropped silently", async () => {
  await withBroker(async (b) => {
    const watcher = await connected(b, "watcher");
    await subscribe(watcher, [["#", 0]]);
    const pub = await connected(b, "pub");
    await pub.send(publish("secret/x", "no"));
    await pub.send(publish("open/x", "yes"));
    assert.equal(text(await watcher.next("publish")), "yes");
    await assertNone(watcher, "publish", 50);
    watcher.close();
    pub.close();
  }, { authorizer: { ...denyTopics, canSubscribe: () => true } });
});

Deno.test("an unauthorized retained PUBLISH does not set or delete the retained message", async () => {
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await publishAcked(pub, "secret/r", "x", 1, { retain: true });
    assert.equal(b.stats.retained, 0);
    pub.close();
  }, { authorizer: { ...denyTopics, canSubscribe: () => true } });
});

Deno.test("retained messages matched by a wildcard are filtered by what the subscriber may read", async () => {
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await publishAcked(pub, "secret/r", "hidden", 0, { retain: true });
    await publishAcked(pub, "open/r", "visible", 0, { retain: true });
    const c = await connected(b, "reader");
    await subscribe(c, [["#", 0]]);
    assert.equal(text(await c.next("publish")), "visible");
    await assertNone(c, "publish");
    c.close();
    pub.close();
  }, { authorizer: { canPublish: () => true, canSubscribe: denyTopics.canSubscribe } });
});

Deno.test("a resumed session keeps only the subscriptions the authorizer still allows", async () => {
  let allowed = true;
  await withBroker(async (b) => {
    const c = await connected(b, "re", { clean: false });
    await subscribe(c, [["acl/a", 1], ["acl/b", 1]]);
    await drop(c);
    allowed = false; // "acl/a" is revoked while offline
    const back = await connected(b, "re", { clean: false });
    const pub = await connected(b, "pub");
    await publishAcked(pub, "acl/a", "a", 1);
    await publishAcked(pub, "acl/b", "b", 1);
    const m = await back.next("publish");
    assert.equal(m.topic, "acl/b");
    await back.send({ type: "puback", packetId: m.packetId! });
    await assertNone(back, "publish");
    back.close();
    pub.close();
  }, {
    authorizer: {
      canPublish: () => true,
      canSubscribe: (_c, f) => allowed || f !== "acl/a",
    },
  });
});

Deno.test("the authorizer sees the connection's client id and user name", async () => {
  const seen: string[] = [];
  await withBroker(async (b) => {
    const c = await connected(b, "az", { extra: { username: "bob" } as never });
    await subscribe(c, [["t/s", 0]]);
    await c.send(publish("t/p", "x"));
    await c.send({ type: "pingreq" });
    await c.next("pingresp");
    c.close();
  }, {
    authorizer: {
      canPublish: (ci, t) => (seen.push(`pub ${ci.clientId} ${ci.username} ${t}`), true),
      canSubscribe: (ci, f) => (seen.push(`sub ${ci.clientId} ${ci.username} ${f}`), true),
    },
  });
  assert.deepEqual(seen, ["sub az bob t/s", "pub az bob t/p"]);
});
