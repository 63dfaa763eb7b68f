/** Last will and testament: when it is published and when it is not. */
import assert from "node:assert/strict";
import { scoped, sleep, startBroker, uid } from "../helpers/broker.ts";
import { type Client, connectMqttJs } from "../helpers/mqttjs.ts";
import * as raw from "../helpers/raw.ts";
import { PacketType as T } from "../helpers/raw.ts";

Deno.test("the broker publishes wills exactly when it should", async (t) => {
  const broker = await startBroker();

  /** A subscriber on `topic` plus a raw client with a will on it. */
  const setup = async (
    defer: (f: () => unknown) => void,
    opts: { keepAlive?: number; clientId?: string } = {},
  ) => {
    const topic = `${uid("will")}/status`;
    const sub = await connectMqttJs(broker.url);
    defer(sub.close);
    await sub.subscribe(`${topic}/#`, 1);
    await sub.subscribe(topic, 1);
    const clientId = opts.clientId ?? uid("will-c");
    const { client, connack } = await raw.rawConnect(broker.host, broker.port, {
      clientId,
      keepAlive: opts.keepAlive ?? 60,
      will: { topic, payload: "gone", qos: 1 },
    });
    defer(client.close);
    assert.equal(raw.hex(connack.bytes), "20 02 00 00");
    return { topic, sub, client, clientId };
  };

  const expectWill = async (sub: Client, topic: string, timeoutMs = 3_000) => {
    const m = await sub.inbox.waitFor((m) => m.topic === topic, timeoutMs, `will on ${topic}`);
    assert.equal(m.payload, "gone");
    assert.equal(m.qos, 1);
    assert.equal(m.retain, false);
  };

  /**
   * Publishes a marker after `topic`'s would-be will, then checks the will did not come. Call it
   * once the broker has closed the connection: it publishes a will as it closes, so a will would
   * be routed before the marker.
   */
  const expectNoWill = async (sub: Client, topic: string) => {
    await sub.publish(`${topic}/marker`, "end", { qos: 1 });
    await sub.inbox.waitFor((m) => m.topic === `${topic}/marker`);
    assert.deepEqual(sub.inbox.on(topic).map((m) => m.payload), [], "will was published");
  };

  try {
    await t.step(
      "the will is published when the socket is closed without DISCONNECT",
      () =>
        scoped(async (defer) => {
          const { topic, sub, client } = await setup(defer);
          await client.close();
          await expectWill(sub, topic);
        }),
    );

    await t.step("the will is not published after a DISCONNECT", () =>
      scoped(async (defer) => {
        const { topic, sub, client } = await setup(defer);
        await client.write(raw.disconnect());
        await client.expectClosed(3_000);
        await expectNoWill(sub, topic);
      }));

    await t.step(
      "a silent client is closed after 1.5 × keepalive and its will is published",
      () =>
        scoped(async (defer) => {
          const { topic, sub, client } = await setup(defer, { keepAlive: 1 });
          const t0 = performance.now();
          await client.expectClosed(3_000);
          const elapsed = performance.now() - t0;
          assert.ok(elapsed >= 900, `closed after ${elapsed.toFixed(0)} ms, before keepalive`);
          assert.ok(elapsed <= 2_600, `closed after ${elapsed.toFixed(0)} ms, expected ~1.5 s`);
          await expectWill(sub, topic);
        }),
    );

    await t.step(
      "a client that sends PINGREQ within its keepalive stays connected",
      () =>
        scoped(async (defer) => {
          const { topic, sub, client } = await setup(defer, { keepAlive: 1 });
          for (let i = 0; i < 4; i++) {
            // Fixed on purpose: the pings must be spaced out, 2.8 s in all, past 1.5 × keepalive.
            await sleep(700);
            await client.write(raw.pingreq());
            await client.expect(T.PINGRESP);
          }
          assert.equal(client.closed, false);
          await client.write(raw.disconnect());
          await client.expectClosed(3_000);
          await expectNoWill(sub, topic);
        }),
    );

    await t.step(
      "a takeover (same client id) closes the first connection and publishes its will",
      () =>
        scoped(async (defer) => {
          const { topic, sub, client, clientId } = await setup(defer);
          const second = await raw.rawConnect(broker.host, broker.port, { clientId });
          defer(second.client.close);
          assert.equal(raw.hex(second.connack.bytes), "20 02 00 00");
          await client.expectClosed(3_000);
          await expectWill(sub, topic);
          // The new connection works.
          await second.client.write(raw.pingreq());
          await second.client.expect(T.PINGRESP);
          assert.deepEqual(await raw.rawSubscribe(second.client, 1, [[`${topic}/x`, 1]]), [1]);
          await sub.publish(`${topic}/x`, "to second", { qos: 1 });
          const m = await second.client.expect(T.PUBLISH);
          assert.equal(raw.text(m), "to second");
          await second.client.write(raw.puback(m.packetId!));
          await second.client.write(raw.disconnect());
        }),
    );

    await t.step(
      "a protocol error after CONNECT closes the connection and publishes the will",
      () =>
        scoped(async (defer) => {
          const { topic, sub, client } = await setup(defer);
          // PUBREL with reserved flags 0000 (must be 0010): malformed.
          await client.write(raw.pubrel(1, 0x60), true);
          await client.expectClosed(3_000);
          await expectWill(sub, topic);
        }),
    );

    await t.step(
      "will retain and will QoS are honoured: a later subscriber gets the retained will",
      () =>
        scoped(async (defer) => {
          const topic = `${uid("will")}/retained`;
          const { client } = await raw.rawConnect(broker.host, broker.port, {
            clientId: uid("will-r"),
            will: { topic, payload: "retained gone", qos: 2, retain: true },
          });
          defer(client.close);
          const cleaner = await connectMqttJs(broker.url);
          defer(cleaner.close);
          defer(() => cleaner.publish(topic, "", { qos: 1, retain: true }));
          const live = await connectMqttJs(broker.url);
          defer(live.close);
          await live.subscribe(topic, 2);
          await client.close();
          const m = await live.inbox.waitFor((m) => m.topic === topic);
          assert.equal(m.payload, "retained gone");
          assert.equal(m.qos, 2, "will QoS 2 to a QoS 2 subscriber");
          assert.equal(m.retain, false, "forwarded to an existing subscriber with RETAIN=0");

          const later = await connectMqttJs(broker.url);
          defer(later.close);
          await later.subscribe(topic, 1);
          const r = await later.inbox.waitFor((m) => m.topic === topic);
          assert.equal(r.payload, "retained gone");
          assert.equal(r.retain, true);
          assert.equal(r.qos, 1, "min(will QoS 2, subscription QoS 1)");
        }),
    );
  } finally {
    await broker.stop();
  }
});
