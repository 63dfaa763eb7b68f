/**
 * MQTT 5.0 conformance, connection level: normative statements the other 5.0 tests exercised
 * without citing them (see docs/mqtt5.md, the conformance table). Refused CONNACKs, the
 * server's DISCONNECT and a zero send quota.
 */
import assert from "node:assert/strict";
import { ReasonCode } from "../../src/codec/reason_codes.ts";
import {
  assertNone,
  disconnect,
  MemoryClient,
  publishAcked,
  subscribe,
  text,
  withBroker,
} from "./harness.ts";
import { connect5, connected5, expectDisconnect } from "./mqtt5_harness.ts";

Deno.test("a refused 5.0 CONNECT resuming a session: Session Present 0, then the connection closes [MQTT-3.2.2-6] [MQTT-3.2.2-7]", async () => {
  await withBroker(async (b) => {
    const { c: first } = await connected5(b, "keep", { sessionExpiryInterval: 600 });
    await disconnect(first);
    assert.ok(b.sessions.has("keep"), "the session outlives its connection");
    const c = new MemoryClient(b, 5);
    // An Authentication Method nobody offers: CONNACK 0x8C, although a session exists.
    await c.send(connect5("keep", { clean: false, properties: { authenticationMethod: "NOPE" } }));
    const ack = await c.next("connack");
    assert.equal(ack.reasonCode, ReasonCode.BadAuthenticationMethod);
    assert.equal(ack.sessionPresent, false, "a non-zero reason code has Session Present 0");
    await c.waitClosed();
    assert.ok(b.sessions.has("keep"), "the refused CONNECT did not touch the session");
  });
});

Deno.test("the server's DISCONNECT never carries a Session Expiry Interval [MQTT-3.14.2-2]", async () => {
  await withBroker(async (b) => {
    const { c: old } = await connected5(b, "twice", { sessionExpiryInterval: 600 });
    await connected5(b, "twice", { sessionExpiryInterval: 600 }, { clean: false });
    const d = await expectDisconnect(old, ReasonCode.SessionTakenOver);
    assert.equal(d.properties?.sessionExpiryInterval, undefined);
  });
});

Deno.test("with the client's send quota at zero, other packets are still answered at once [MQTT-4.9.0-3] [MQTT-3.3.4-10]", async () => {
  await withBroker(async (b) => {
    const { c: sub } = await connected5(b, "sub", { receiveMaximum: 1 });
    await subscribe(sub, [["t", 1]]);
    const { c: pub } = await connected5(b, "pub");
    await publishAcked(pub, "t", "first", 1);
    await publishAcked(pub, "t", "second", 1, { packetId: 2 });
    const first = await sub.next("publish");
    assert.equal(text(first), "first");
    // Quota 0: "second" waits for the PUBACK, but nothing else does.
    await assertNone(sub, "publish");
    await sub.send({ type: "pingreq" });
    await sub.next("pingresp");
    assert.deepEqual(await subscribe(sub, [["u", 0]], 7), [0]);
    await sub.send({ type: "unsubscribe", packetId: 8, topics: ["u"] });
    assert.equal((await sub.next("unsuback")).packetId, 8);
    await sub.send({ type: "puback", packetId: first.packetId! });
    assert.equal(text(await sub.next("publish")), "second");
    sub.close();
    pub.close();
  });
});
