/** Malformed input closes the offending connection and leaves everyone else alone. */
import assert from "node:assert/strict";
import { scoped, startBroker, uid } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import * as raw from "../helpers/raw.ts";

const CASES: { name: string; bytes: (topic: string) => Uint8Array }[] = [
  { name: "PUBREL with reserved flags 0000", bytes: () => raw.pubrel(1, 0x60) },
  {
    name: "SUBSCRIBE with reserved flags 0000",
    bytes: (t) => raw.packet(0x80, raw.concat(raw.u16(1), raw.str(t), [0])),
  },
  {
    name: "UNSUBSCRIBE with reserved flags 0000",
    bytes: (t) => raw.packet(0xa0, raw.concat(raw.u16(1), raw.str(t))),
  },
  { name: "PINGREQ with flags 0001", bytes: () => Uint8Array.from([0xc1, 0x00]) },
  {
    name: "PUBLISH with QoS 3",
    bytes: (t) => raw.packet(0x36, raw.concat(raw.str(t), raw.u16(1), [0x41])),
  },
  { name: "packet type 0 (reserved)", bytes: () => Uint8Array.from([0x00, 0x00]) },
  { name: "packet type 15 (reserved)", bytes: () => Uint8Array.from([0xf0, 0x00]) },
  {
    name: "remaining length of 5 bytes",
    bytes: () => Uint8Array.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]),
  },
  {
    name: "invalid UTF-8 in the topic name",
    bytes: (t) =>
      raw.publish({
        topic: raw.concat(new TextEncoder().encode(t + "/"), [0xc3, 0x28]),
        payload: "x",
      }),
  },
  {
    name: "U+0000 in the topic name",
    bytes: (t) =>
      raw.publish({ topic: raw.concat(new TextEncoder().encode(t + "/"), [0x00]), payload: "x" }),
  },
  {
    name: "a topic length longer than the packet",
    bytes: () => raw.packet(0x30, raw.concat(raw.u16(50), [0x61, 0x62])),
  },
  { name: "SUBSCRIBE with no topic filter", bytes: () => raw.packet(0x82, raw.u16(1)) },
  { name: "SUBSCRIBE with requested QoS 3", bytes: (t) => raw.subscribe(1, [[t, 3]]) },
  {
    name: "PUBLISH QoS 1 with packet id 0",
    bytes: (t) => raw.publish({ topic: t, payload: "x", qos: 1, packetId: 0 }),
  },
];

Deno.test("malformed packets close the connection and other clients are unaffected", async (t) => {
  const broker = await startBroker();
  try {
    const p = uid("malformed");
    const bystander = await connectMqttJs(broker.url);
    try {
      await bystander.subscribe(`${p}/#`, 1);
      let n = 0;
      for (const c of CASES) {
        await t.step(`${c.name}: connection closed`, () =>
          scoped(async (defer) => {
            const { client } = await raw.rawConnect(broker.host, broker.port, {
              clientId: uid("m"),
            });
            defer(client.close);
            await client.write(c.bytes(`${p}/victim`), true);
            const extra = await client.expectClosed(3_000);
            assert.deepEqual(extra.map(raw.describe), [], "no answer to a malformed packet");
            // The bystander still gets messages.
            const marker = `${p}/alive/${n++}`;
            await bystander.publish(marker, "ok", { qos: 1 });
            await bystander.inbox.waitFor((m) => m.topic === marker);
          }));
      }
      await t.step("none of the malformed publishes was delivered", () => {
        const leaked = bystander.inbox.messages.filter((m) => !m.topic.startsWith(`${p}/alive/`));
        assert.deepEqual(leaked.map((m) => m.topic), []);
      });
      await t.step(
        "a malformed CONNECT (invalid UTF-8 client id) is closed",
        () =>
          scoped(async (defer) => {
            const c = await raw.RawClient.open(broker.host, broker.port);
            defer(c.close);
            const good = raw.connect({ clientId: "ab" });
            // Patch the client id bytes "ab" into an invalid UTF-8 sequence.
            const bad = good.slice();
            bad.set([0xc3, 0x28], bad.length - 2);
            await c.write(bad, true);
            await c.expectClosed(3_000);
          }),
      );
      await t.step(
        "a CONNECT with reserved flag bit 0 set is closed",
        () =>
          scoped(async (defer) => {
            const c = await raw.RawClient.open(broker.host, broker.port);
            defer(c.close);
            const bad = raw.connect({ clientId: uid("r") });
            bad[9] |= 0x01; // connect flags: 10 len 00 04 M Q T T 04 flags
            await c.write(bad, true);
            await c.expectClosed(3_000);
          }),
      );
    } finally {
      await bystander.close();
    }
  } finally {
    await broker.stop();
  }
});
