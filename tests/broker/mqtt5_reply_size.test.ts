/**
 * MQTT-3.1.2-24 for the broker's replies: a SUBACK, UNSUBACK or PUBACK/PUBREC never exceeds the
 * 5.0 client's Maximum Packet Size. Its Reason String goes first (MQTT-3.4.2-2, MQTT-3.5.2-2,
 * MQTT-3.9.2-1); a SUBACK or UNSUBACK still too large closes the connection with DISCONNECT 0x95
 * (src/broker/replies.ts), since it can be neither sent nor left out.
 */
import assert from "node:assert/strict";
import { encode } from "../../src/codec/encoder.ts";
import { ReasonCode } from "../../src/codec/reason_codes.ts";
import { publish, withBroker } from "./harness.ts";
import { connect5, connected5, expectDisconnect } from "./mqtt5_harness.ts";
import { MemoryClient } from "./memory_pipe.ts";

const lockedOut = {
  canPublish: (_c: unknown, t: string) => !t.startsWith("locked/"),
  canSubscribe: (_c: unknown, t: string) => !t.startsWith("locked/"),
};

Deno.test("a refused PUBLISH is answered PUBACK / PUBREC 0x87 without the Reason String that would not fit the client's Maximum Packet Size [MQTT-3.1.2-24] [MQTT-3.4.2-2] [MQTT-3.5.2-2]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "tight", { maximumPacketSize: 16 });
    await c.send(publish("locked/a", "x", 1, { packetId: 1 }));
    const ack = await c.next("puback");
    assert.equal(ack.reasonCode, ReasonCode.NotAuthorized);
    assert.equal(ack.properties?.reasonString, undefined);
    assert.ok(encode(ack, 5).byteLength <= 16);
    await c.send(publish("locked/a", "x", 2, { packetId: 2 }));
    const rec = await c.next("pubrec");
    assert.equal(rec.reasonCode, ReasonCode.NotAuthorized);
    assert.equal(rec.properties?.reasonString, undefined);
    // With room for it, the Reason String is sent.
    const { c: roomy } = await connected5(b, "roomy", { maximumPacketSize: 1000 });
    await roomy.send(publish("locked/a", "x", 1, { packetId: 1 }));
    assert.match((await roomy.next("puback")).properties?.reasonString ?? "", /not authorized/);
    c.close();
    roomy.close();
  }, { authorizer: lockedOut });
});

Deno.test("a SUBACK with a refused filter loses its Reason String when it would not fit [MQTT-3.1.2-24] [MQTT-3.9.2-1]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "tight", { maximumPacketSize: 20 });
    await c.send({
      type: "subscribe",
      packetId: 1,
      subscriptions: [{ topic: "ok", qos: 1 }, { topic: "locked/x", qos: 1 }],
    });
    const ack = await c.next("suback");
    assert.deepEqual(ack.reasonCodes, [1, ReasonCode.NotAuthorized]);
    assert.equal(ack.properties?.reasonString, undefined);
    c.close();
  }, { authorizer: lockedOut });
});

Deno.test("a SUBACK that cannot fit the client's Maximum Packet Size even bare is not sent: DISCONNECT 0x95 [MQTT-3.1.2-24]", async () => {
  await withBroker(async (b) => {
    // 16 bytes: room for the CONNACK (15 here), not for a SUBACK of 16 reason codes (21).
    const { c } = await connected5(b, "tiny", { maximumPacketSize: 16 });
    const subscriptions = Array.from(
      { length: 16 },
      (_, i) => ({ topic: `t/${i}`, qos: 0 as const }),
    );
    await c.send({ type: "subscribe", packetId: 1, subscriptions });
    await expectDisconnect(c, ReasonCode.PacketTooLarge);
    assert.deepEqual(c.pending("suback"), []);
  });
});

Deno.test("an UNSUBACK that cannot fit the client's Maximum Packet Size is not sent: DISCONNECT 0x95; one that fits is sent [MQTT-3.1.2-24]", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "tiny", { maximumPacketSize: 16 });
    await c.send({ type: "unsubscribe", packetId: 1, topics: ["a", "b"] });
    assert.deepEqual((await c.next("unsuback")).reasonCodes, [0x11, 0x11]);
    const topics = Array.from({ length: 16 }, (_, i) => `t/${i}`);
    await c.send({ type: "unsubscribe", packetId: 2, topics });
    await expectDisconnect(c, ReasonCode.PacketTooLarge);
    assert.deepEqual(c.pending("unsuback"), []);
  });
});

Deno.test("a Maximum Packet Size below the CONNACK that states the server's limits is refused with a bare CONNACK 0x95, no session kept [MQTT-3.1.2-24]", async () => {
  await withBroker(async (b) => {
    const c = new MemoryClient(b, 5);
    await c.send(connect5("small", { properties: { maximumPacketSize: 8 } }));
    const ack = await c.next("connack");
    assert.equal(ack.reasonCode, ReasonCode.PacketTooLarge);
    assert.equal(ack.properties, undefined, "no Reason String: it would not fit");
    assert.ok(encode(ack, 5).byteLength <= 8);
    await c.waitClosed();
    assert.equal(b.sessions.size, 0);
  });
});

Deno.test("a Maximum Packet Size below 5 bytes, too small for any CONNACK, gets nothing: the connection is closed [MQTT-3.1.2-24] [MQTT-3.14.0-1]", async () => {
  for (const max of [1, 4]) {
    await withBroker(async (b) => {
      const c = new MemoryClient(b, 5);
      await c.send(connect5(`tiny${max}`, { properties: { maximumPacketSize: max } }));
      await c.waitClosed();
      assert.deepEqual(c.pending("connack"), [], `max ${max}: no CONNACK`);
      assert.deepEqual(c.pending("disconnect"), [], `max ${max}: no DISCONNECT`);
      assert.equal(b.sessions.size, 0);
    });
  }
});

Deno.test("Response Information is left out of a CONNACK it would push over the client's Maximum Packet Size; the client is accepted [MQTT-3.1.2-24]", async () => {
  await withBroker(async (b) => {
    const { ack: roomy } = await connected5(b, "roomy", { requestResponseInformation: 1 });
    const info = roomy.properties?.responseInformation;
    assert.equal(info, "a/long/response/information/prefix/");
    const bare = encode({ ...roomy, properties: { ...roomy.properties } }, 5).byteLength;
    const max = bare - 1;
    const { ack } = await connected5(b, "tight", {
      requestResponseInformation: 1,
      maximumPacketSize: max,
    });
    assert.equal(ack.properties?.responseInformation, undefined);
    assert.ok(encode(ack, 5).byteLength <= max);
  }, { options: { responseInformation: "a/long/response/information/prefix/" } });
});
