/**
 * MQTT 5.0 enhanced authentication in the core (4.12, 3.15): the AUTH exchange between CONNECT
 * and CONNACK, re-authentication, and the protocol errors around them, with SCRAM-SHA-256 (the
 * broker's src/auth/scram.ts behind the EnhancedAuthenticator port) and a node:crypto client.
 */
import assert from "node:assert/strict";
import { makeVerifier, ScramServerExchange, type ScramVerifier } from "../../src/auth/scram.ts";
import type { ClientInfo } from "../../src/broker/model.ts";
import type { EnhancedAuthenticator } from "../../src/broker/ports/auth.ts";
import type { AuthPacket, Properties } from "../../src/codec/packets.ts";
import { ReasonCode } from "../../src/codec/reason_codes.ts";
import { METHOD, ScramClient } from "../helpers/scram_client.ts";
import { type BrokerSetup, MemoryClient, publishAcked, subscribe, withBroker } from "./harness.ts";
import { connect5, connected5, expectDisconnect, hex } from "./mqtt5_harness.ts";

const verifiers = new Map<string, ScramVerifier>([
  ["user", await makeVerifier("pencil", 4096)],
  ["other", await makeVerifier("secret", 4096)],
]);

const scram: EnhancedAuthenticator = {
  methods: [METHOD],
  start: () =>
    new ScramServerExchange({
      lookup: (u) => verifiers.get(u),
      fake: () => Promise.resolve({ salt: new Uint8Array(16), iterations: 4096 }),
    }),
};

/** Who the authorizer saw publishing: the username the core settled on. */
const seen: ClientInfo[] = [];
const setup: BrokerSetup = {
  enhancedAuthenticator: scram,
  authorizer: {
    canPublish: (c) => (seen.push({ ...c }), true),
    canSubscribe: () => true,
  },
};

function auth(code: number, data?: Uint8Array, method = METHOD): AuthPacket {
  const properties: Properties = { authenticationMethod: method };
  if (data !== undefined) properties.authenticationData = data;
  return { type: "auth", reasonCode: code, properties };
}

/** CONNECT with SCRAM, up to the server's AUTH 0x18 (asserted). */
async function startScram(
  b: Parameters<Parameters<typeof withBroker>[0]>[0],
  id: string,
  s: ScramClient,
  over = {},
) {
  const c = new MemoryClient(b, 5);
  await c.send(connect5(id, {
    properties: { authenticationMethod: METHOD, authenticationData: s.first() },
    ...over,
  }));
  const challenge = await c.next("auth");
  return { c, challenge };
}

/** A client authenticated by SCRAM (CONNACK 0 asserted). */
async function scramConnected(b: Parameters<Parameters<typeof withBroker>[0]>[0], id: string) {
  const s = new ScramClient("user", "pencil");
  const { c, challenge } = await startScram(b, id, s);
  await c.send(
    auth(ReasonCode.ContinueAuthentication, s.final(challenge.properties!.authenticationData!)),
  );
  const ack = await c.next("connack");
  assert.equal(ack.reasonCode, 0);
  return { c, ack };
}

Deno.test("SCRAM in CONNECT: AUTH 0x18 both ways, then CONNACK 0 with the method and the server's proof [MQTT-4.12.0-2] [MQTT-4.12.0-3] [MQTT-4.12.0-5]", async () => {
  seen.length = 0;
  await withBroker(async (b) => {
    const s = new ScramClient("user", "pencil");
    const { c, challenge } = await startScram(b, "scram1", s);
    assert.equal(challenge.reasonCode, ReasonCode.ContinueAuthentication);
    assert.equal(challenge.properties?.authenticationMethod, METHOD);
    assert.match(
      new TextDecoder().decode(challenge.properties?.authenticationData),
      /^r=.*,s=.*,i=4096$/,
    );
    // Absence tested: no CONNACK before the client answered.
    assert.equal(c.pending("connack").length, 0);
    await c.send(
      auth(ReasonCode.ContinueAuthentication, s.final(challenge.properties!.authenticationData!)),
    );
    const ack = await c.next("connack");
    assert.equal(ack.reasonCode, 0);
    assert.equal(ack.properties?.authenticationMethod, METHOD);
    assert.ok(s.verifyServer(ack.properties?.authenticationData), "server-final proves the server");
    await publishAcked(c, "t", "x", 1);
    assert.equal(seen.at(-1)?.username, "user", "the proven user is the connection's user name");
    c.close();
  }, setup);
});

Deno.test("a wrong SCRAM password gets CONNACK 0x87 and the connection is closed [MQTT-4.12.0-4]", async () => {
  await withBroker(async (b) => {
    const s = new ScramClient("user", "wrong");
    const { c, challenge } = await startScram(b, "scram2", s);
    await c.send(
      auth(ReasonCode.ContinueAuthentication, s.final(challenge.properties!.authenticationData!)),
    );
    const ack = await c.next("connack");
    assert.equal(ack.reasonCode, ReasonCode.NotAuthorized);
    assert.equal(ack.properties?.authenticationMethod, undefined);
    await c.waitClosed();
    assert.equal(b.sessions.has("scram2"), false);
  }, setup);
});

Deno.test("an unknown user is challenged like a known one and refused with the same 0x87 (RFC 5802 §5.1)", async () => {
  await withBroker(async (b) => {
    const s = new ScramClient("nobody", "pencil");
    const { c, challenge } = await startScram(b, "scram3", s);
    assert.equal(challenge.reasonCode, ReasonCode.ContinueAuthentication);
    await c.send(
      auth(ReasonCode.ContinueAuthentication, s.final(challenge.properties!.authenticationData!)),
    );
    assert.equal((await c.next("connack")).reasonCode, ReasonCode.NotAuthorized);
    await c.waitClosed();
  }, setup);
});

Deno.test("an unsupported method gets CONNACK 0x8C, also without any enhanced authenticator [MQTT-4.12.0-1]", async () => {
  for (const s of [setup, {}]) {
    await withBroker(async (b) => {
      const c = new MemoryClient(b, 5);
      await c.send(
        connect5("m", { properties: { authenticationMethod: s === setup ? "KERBEROS" : METHOD } }),
      );
      const ack = await c.next("connack");
      assert.equal(ack.reasonCode, ReasonCode.BadAuthenticationMethod);
      // MQTT-4.12.0-6 concerns no-method CONNECTs; a refusal carries no method either.
      assert.equal(ack.properties?.authenticationMethod, undefined);
      await c.waitClosed();
    }, s);
  }
});

Deno.test("a PUBLISH during the exchange gets CONNACK 0x82 and is never delivered [MQTT-3.1.2-30]", async () => {
  await withBroker(async (b) => {
    const sub = await connected5(b, "watcher");
    await subscribe(sub.c, [["leak", 0]]);
    const { c } = await startScram(b, "scram4", new ScramClient("user", "pencil"));
    await c.send({
      type: "publish",
      topic: "leak",
      payload: new Uint8Array([1]),
      qos: 0,
      retain: false,
      dup: false,
    });
    const ack = await c.next("connack");
    assert.equal(ack.reasonCode, ReasonCode.ProtocolError);
    assert.match(ack.properties?.reasonString ?? "", /PUBLISH during authentication/);
    await c.waitClosed();
    // Absence tested: the PUBLISH went nowhere.
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(sub.c.pending("publish").length, 0);
    sub.c.close();
  }, setup);
});

Deno.test("during the exchange an AUTH with another method, 0x19 or 0x00 gets CONNACK 0x82 [MQTT-4.12.0-5] [MQTT-4.12.0-3]", async () => {
  await withBroker(async (b) => {
    for (
      const bad of [
        auth(ReasonCode.ContinueAuthentication, new Uint8Array(0), "PLAIN"),
        auth(ReasonCode.ReAuthenticate, new Uint8Array(0)),
        auth(ReasonCode.Success),
      ]
    ) {
      const { c } = await startScram(b, "scram5", new ScramClient("user", "pencil"));
      await c.send(bad);
      assert.equal((await c.next("connack")).reasonCode, ReasonCode.ProtocolError);
      await c.waitClosed();
    }
  }, setup);
});

Deno.test("a DISCONNECT during the exchange closes without CONNACK", async () => {
  await withBroker(async (b) => {
    const { c } = await startScram(b, "scram6", new ScramClient("user", "pencil"));
    await c.send({ type: "disconnect", reasonCode: 0 });
    await c.waitClosed();
    assert.equal(c.pending("connack").length, 0);
    assert.equal(b.sessions.has("scram6"), false);
  }, setup);
});

Deno.test("a client that stops answering the challenge is closed after the connect timeout", async () => {
  await withBroker(async (b) => {
    const { c } = await startScram(b, "scram7", new ScramClient("user", "pencil"));
    await c.waitClosed(3000);
    assert.equal(c.pending("connack").length, 0);
  }, { ...setup, options: { connectTimeout: 0.3 } });
});

Deno.test("a CONNECT user name other than the SCRAM user gets CONNACK 0x87", async () => {
  await withBroker(async (b) => {
    const s = new ScramClient("user", "pencil");
    const { c, challenge } = await startScram(b, "scram8", s, { username: "admin" });
    await c.send(
      auth(ReasonCode.ContinueAuthentication, s.final(challenge.properties!.authenticationData!)),
    );
    const ack = await c.next("connack");
    assert.equal(ack.reasonCode, ReasonCode.NotAuthorized);
    assert.match(ack.properties?.reasonString ?? "", /not the authenticated user/);
  }, setup);
});

Deno.test("re-authentication: AUTH 0x19, 0x18 both ways, AUTH 0x00 with the server's proof; traffic goes on meanwhile [MQTT-4.12.1-1]", async () => {
  await withBroker(async (b) => {
    const { c } = await scramConnected(b, "re1");
    const s = new ScramClient("user", "pencil");
    await c.send(auth(ReasonCode.ReAuthenticate, s.first()));
    const challenge = await c.next("auth");
    assert.equal(challenge.reasonCode, ReasonCode.ContinueAuthentication);
    assert.equal(challenge.properties?.authenticationMethod, METHOD);
    // 4.12.1: other packets flow under the previous authentication.
    await publishAcked(c, "during", "x", 1);
    await c.send(
      auth(ReasonCode.ContinueAuthentication, s.final(challenge.properties!.authenticationData!)),
    );
    const done = await c.next("auth");
    assert.equal(done.reasonCode, ReasonCode.Success);
    assert.equal(done.properties?.authenticationMethod, METHOD);
    assert.ok(s.verifyServer(done.properties?.authenticationData));
    await publishAcked(c, "after", "y", 1);
    c.close();
  }, setup);
});

Deno.test("a failed re-authentication ends the connection with DISCONNECT 0x87 [MQTT-4.12.1-2]", async () => {
  await withBroker(async (b) => {
    const { c } = await scramConnected(b, "re2");
    const s = new ScramClient("user", "not-pencil");
    await c.send(auth(ReasonCode.ReAuthenticate, s.first()));
    const challenge = await c.next("auth");
    await c.send(
      auth(ReasonCode.ContinueAuthentication, s.final(challenge.properties!.authenticationData!)),
    );
    await expectDisconnect(c, ReasonCode.NotAuthorized);
  }, setup);
});

Deno.test("re-authenticating as another user ends the connection with DISCONNECT 0x87", async () => {
  await withBroker(async (b) => {
    const { c } = await scramConnected(b, "re3");
    const s = new ScramClient("other", "secret");
    await c.send(auth(ReasonCode.ReAuthenticate, s.first()));
    const challenge = await c.next("auth");
    await c.send(
      auth(ReasonCode.ContinueAuthentication, s.final(challenge.properties!.authenticationData!)),
    );
    const d = await expectDisconnect(c, ReasonCode.NotAuthorized);
    assert.match(d.properties?.reasonString ?? "", /another user/);
  }, setup);
});

Deno.test("re-authentication with another method is a protocol error: DISCONNECT 0x82 [MQTT-4.12.1-1]", async () => {
  await withBroker(async (b) => {
    const { c } = await scramConnected(b, "re4");
    await c.send(auth(ReasonCode.ReAuthenticate, new Uint8Array(0), "SCRAM-SHA-1"));
    await expectDisconnect(c, ReasonCode.ProtocolError);
  }, setup);
});

Deno.test("AUTH from a client whose CONNECT had no method: DISCONNECT 0x82 [MQTT-4.12.0-7]", async () => {
  await withBroker(async (b) => {
    const { c, ack } = await connected5(b, "plain");
    assert.equal(ack.properties?.authenticationMethod, undefined, "[MQTT-4.12.0-6]");
    await c.send(auth(ReasonCode.ReAuthenticate, new Uint8Array(0)));
    await expectDisconnect(c, ReasonCode.ProtocolError);
  }, setup);
});

Deno.test("AUTH 0x18 with no challenge pending, and a client's AUTH 0x00, are protocol errors: DISCONNECT 0x82 [MQTT-4.12.0-3] [MQTT-3.15.2-1]", async () => {
  await withBroker(async (b) => {
    for (const code of [ReasonCode.ContinueAuthentication, ReasonCode.Success]) {
      const { c } = await scramConnected(b, `re5-${code}`);
      await c.send(auth(code, new Uint8Array(0)));
      await expectDisconnect(c, ReasonCode.ProtocolError);
    }
  }, setup);
});

Deno.test("raw bytes: an AUTH with reserved flag bits is malformed: DISCONNECT 0x81 [MQTT-3.15.1-1]", async () => {
  await withBroker(async (b) => {
    const { c } = await scramConnected(b, "raw1");
    // AUTH with flags 0001, reason 0x19, no properties.
    await c.sendBytes(hex("f1 02 19 00"));
    await expectDisconnect(c, ReasonCode.MalformedPacket);
  }, setup);
});

Deno.test("raw bytes: an AUTH with a reason code AUTH does not have is a protocol error: DISCONNECT 0x82 [MQTT-3.15.2-1]", async () => {
  await withBroker(async (b) => {
    const { c } = await scramConnected(b, "raw2");
    await c.sendBytes(hex("f0 02 87 00"));
    await expectDisconnect(c, ReasonCode.ProtocolError);
  }, setup);
});

Deno.test("a 3.1.1 client's type-15 packet still just closes the connection (no DISCONNECT in 3.1.1)", async () => {
  await withBroker(async (b) => {
    const c = new MemoryClient(b, 4);
    assert.equal((await c.connect("old", true)).reasonCode, 0);
    await c.sendBytes(hex("f0 00"));
    await c.waitClosed();
    assert.equal(c.pending("disconnect").length, 0);
  }, setup);
});
