/** QoS 1/2 flows and persistent sessions, byte-exact over raw TCP. */
import assert from "node:assert/strict";
import { type Broker, scoped, startBroker, uid } from "../helpers/broker.ts";
import { type Client, connectMqttJs } from "../helpers/mqttjs.ts";
import * as raw from "../helpers/raw.ts";
import { PacketType as T } from "../helpers/raw.ts";

/**
 * A will for a connection the test drops, and a wait for it: the broker publishes the will once
 * it has seen the connection go, after detaching the session. Publishing before that would race
 * the broker (a message could still go to the dead connection).
 */
async function dropWatch(watcher: Client) {
  const topic = `${uid("dropped")}/will`;
  await watcher.subscribe(topic, 0);
  return {
    will: { topic, payload: "gone" },
    seen: () =>
      watcher.inbox.waitFor((m) => m.topic === topic, 3_000, "the broker to see the drop"),
  };
}

/** Ends a persistent session: connect with clean session 1, then DISCONNECT. */
async function wipeSession(broker: Broker, clientId: string): Promise<void> {
  const { client } = await raw.rawConnect(broker.host, broker.port, {
    clientId,
    cleanSession: true,
  });
  await client.write(raw.disconnect(), true);
  await client.close();
}

Deno.test("QoS 1 and 2 flows and persistent sessions", async (t) => {
  const broker = await startBroker();
  try {
    await t.step(
      "a retransmitted QoS 2 PUBLISH (DUP=1, same id, before PUBREL) is delivered once",
      () =>
        scoped(async (defer) => {
          const topic = `${uid("dup")}/t`;
          const sub = await connectMqttJs(broker.url);
          defer(sub.close);
          await sub.subscribe(topic, 2);
          await sub.subscribe(`${topic}/marker`, 2);
          const { client: pub } = await raw.rawConnect(broker.host, broker.port, {
            clientId: uid("dup-pub"),
          });
          defer(pub.close);

          await pub.write(raw.publish({ topic, payload: "exactly once", qos: 2, packetId: 7 }));
          assert.equal(raw.hex((await pub.expect(T.PUBREC)).bytes), "50 02 00 07");
          await pub.write(
            raw.publish({ topic, payload: "exactly once", qos: 2, packetId: 7, dup: true }),
          );
          assert.equal(raw.hex((await pub.expect(T.PUBREC)).bytes), "50 02 00 07");
          await pub.write(raw.pubrel(7));
          assert.equal(raw.hex((await pub.expect(T.PUBCOMP)).bytes), "70 02 00 07");

          await pub.write(
            raw.publish({ topic: `${topic}/marker`, payload: "end", qos: 2, packetId: 8 }),
          );
          await pub.expect(T.PUBREC);
          await pub.write(raw.pubrel(8));
          await pub.expect(T.PUBCOMP);
          // The marker went after the whole QoS 2 flow: a second delivery would be here first.
          await sub.inbox.waitFor((m) => m.topic === `${topic}/marker`);
          assert.deepEqual(sub.inbox.on(topic).map((m) => m.payload), ["exactly once"]);
        }),
    );

    await t.step(
      "after a reconnect the broker resends PUBREL with the same packet id, session present 1",
      () =>
        scoped(async (defer) => {
          const topic = `${uid("pubrel")}/t`;
          const clientId = uid("pubrel-sub");
          defer(() => wipeSession(broker, clientId));
          const pub = await connectMqttJs(broker.url);
          defer(pub.close);
          const drop = await dropWatch(pub);
          const first = await raw.rawConnect(broker.host, broker.port, {
            clientId,
            cleanSession: false,
            will: drop.will,
          });
          defer(first.client.close);
          assert.deepEqual(await raw.rawSubscribe(first.client, 1, [[topic, 2]]), [2]);

          await pub.publish(topic, "qos2 payload", { qos: 2 });

          const msg = await first.client.expect(T.PUBLISH);
          assert.equal(msg.qos, 2);
          assert.equal(raw.text(msg), "qos2 payload");
          const id = msg.packetId!;
          await first.client.write(raw.pubrec(id));
          const rel = await first.client.expect(T.PUBREL);
          assert.equal(raw.hex(rel.bytes), raw.hex(raw.pubrel(id)), "PUBREL must be 62 02 <id>");
          // Abrupt disconnect without PUBCOMP.
          await first.client.close();
          await drop.seen();

          const again = await raw.rawConnect(broker.host, broker.port, {
            clientId,
            cleanSession: false,
          });
          defer(again.client.close);
          assert.equal(raw.hex(again.connack.bytes), "20 02 01 00", "CONNACK session present 1");
          const rel2 = await again.client.expect(T.PUBREL);
          assert.equal(raw.hex(rel2.bytes), raw.hex(raw.pubrel(id)), "resent PUBREL, same id");
          await again.client.write(raw.pubcomp(id));
          // The message itself must not come again (it was PUBREC'd).
          await again.client.expectSilence(500);
          await again.client.write(raw.disconnect());
        }),
    );

    await t.step(
      "a persistent subscriber gets the unacknowledged message with DUP=1, then the queued ones",
      () =>
        scoped(async (defer) => {
          const topic = `${uid("queue")}/t`;
          const clientId = uid("queue-sub");
          defer(() => wipeSession(broker, clientId));
          const pub = await connectMqttJs(broker.url);
          defer(pub.close);
          const drop = await dropWatch(pub);
          const first = await raw.rawConnect(broker.host, broker.port, {
            clientId,
            cleanSession: false,
            will: drop.will,
          });
          defer(first.client.close);
          assert.equal(raw.hex(first.connack.bytes), "20 02 00 00");
          assert.deepEqual(await raw.rawSubscribe(first.client, 1, [[topic, 1]]), [1]);

          await pub.publish(topic, "m1", { qos: 1 });
          const m1 = await first.client.expect(T.PUBLISH);
          assert.equal(raw.text(m1), "m1");
          assert.equal(m1.qos, 1);
          assert.equal(m1.dup, false);
          // No PUBACK; abrupt disconnect, and the broker must have noticed it before m2..m4.
          await first.client.close();
          await drop.seen();

          for (const p of ["m2", "m3", "m4"]) await pub.publish(topic, p, { qos: 1 });

          const again = await raw.rawConnect(broker.host, broker.port, {
            clientId,
            cleanSession: false,
          });
          defer(again.client.close);
          assert.equal(raw.hex(again.connack.bytes), "20 02 01 00", "CONNACK session present 1");
          const r1 = await again.client.expect(T.PUBLISH);
          assert.equal(raw.text(r1), "m1");
          assert.equal(r1.dup, true, `resent with DUP=1: ${raw.describe(r1)}`);
          assert.equal(r1.packetId, m1.packetId, "resent with the same packet id");
          assert.equal(r1.bytes[0], 0x3a);
          const later = [];
          for (let i = 0; i < 3; i++) {
            const p = await again.client.expect(T.PUBLISH);
            later.push(p);
          }
          assert.deepEqual(later.map(raw.text), ["m2", "m3", "m4"]);
          for (const p of later) {
            assert.equal(p.dup, false, raw.describe(p));
            assert.equal(p.qos, 1);
          }
          for (const p of [r1, ...later]) await again.client.write(raw.puback(p.packetId!));
          await again.client.expectSilence(300);
          await again.client.write(raw.disconnect());
          // The broker closes the connection as it ends it, so m5 finds the session offline.
          await again.client.expectClosed();
          await again.client.close();

          // Something queued while offline, then a clean-session reconnect: nothing comes.
          await pub.publish(topic, "m5", { qos: 1 });
          const clean = await raw.rawConnect(broker.host, broker.port, {
            clientId,
            cleanSession: true,
          });
          defer(clean.client.close);
          assert.equal(raw.hex(clean.connack.bytes), "20 02 00 00", "CONNACK session present 0");
          await clean.client.expectSilence(700);
          await pub.publish(topic, "m6", { qos: 1 });
          await clean.client.expectSilence(300);
        }),
    );

    await t.step(
      "a QoS 1 PUBLISH is answered with PUBACK carrying its packet id",
      () =>
        scoped(async (defer) => {
          const { client } = await raw.rawConnect(broker.host, broker.port, {
            clientId: uid("ack"),
          });
          defer(client.close);
          await client.write(
            raw.publish({ topic: `${uid("ack")}/t`, payload: "x", qos: 1, packetId: 0x1234 }),
          );
          assert.equal(raw.hex((await client.expect(T.PUBACK)).bytes), "40 02 12 34");
        }),
    );
  } finally {
    await broker.stop();
  }
});
