/**
 * The accepted 3.1.1 CONNACK goes out from one shared buffer when it is a connection's first
 * output (output.ts): whatever follows it in the same turn must not write into that buffer.
 * Byte-exact over raw TCP.
 */
import assert from "node:assert/strict";
import { scoped, startBroker, uid } from "../helpers/broker.ts";
import * as raw from "../helpers/raw.ts";
import { PacketType as T } from "../helpers/raw.ts";

Deno.test("a resumed session's CONNACK and its queued messages arrive intact, and later CONNACKs are unchanged", async () => {
  const broker = await startBroker();
  try {
    await scoped(async (defer) => {
      const topic = `${uid("connack")}/t`;
      const clientId = uid("resumed");
      // A persistent session with a subscription, then offline.
      const first = await raw.rawConnect(broker.host, broker.port, {
        clientId,
        cleanSession: false,
      });
      assert.deepEqual([...first.connack.bytes], [0x20, 2, 0, 0]);
      await raw.rawSubscribe(first.client, 1, [[topic, 1]]);
      await first.client.write(raw.disconnect(), true);
      await first.client.close();

      // Messages queued for it while it is away.
      const pub = await raw.rawConnect(broker.host, broker.port, { clientId: uid("pub") });
      defer(pub.client.close);
      for (let i = 1; i <= 3; i++) {
        await pub.client.write(raw.publish({ topic, payload: `queued ${i}`, qos: 1, packetId: i }));
        const ack = await pub.client.expect(T.PUBACK);
        assert.equal(ack.packetId, i);
      }

      // Back: CONNACK with Session Present, then the queued messages in the same turn.
      const back = await raw.rawConnect(broker.host, broker.port, {
        clientId,
        cleanSession: false,
      });
      defer(back.client.close);
      assert.deepEqual([...back.connack.bytes], [0x20, 2, 1, 0]);
      const got: string[] = [];
      for (let i = 1; i <= 3; i++) {
        const p = await back.client.expect(T.PUBLISH);
        assert.equal(p.topic, topic);
        got.push(new TextDecoder().decode(p.payload));
        await back.client.write(raw.puback(p.packetId!));
      }
      assert.deepEqual(got, ["queued 1", "queued 2", "queued 3"]);

      // Later connections, clean and resumed, still get the exact CONNACKs.
      for (let i = 0; i < 5; i++) {
        const c = await raw.rawConnect(broker.host, broker.port, { clientId: uid("clean") });
        assert.deepEqual([...c.connack.bytes], [0x20, 2, 0, 0], `clean connection ${i}`);
        await c.client.close();
      }
      await back.client.write(raw.disconnect(), true);
      await back.client.close();
      const again = await raw.rawConnect(broker.host, broker.port, {
        clientId,
        cleanSession: false,
      });
      defer(again.client.close);
      assert.deepEqual([...again.connack.bytes], [0x20, 2, 1, 0]);
    });
  } finally {
    await broker.stop();
  }
});
