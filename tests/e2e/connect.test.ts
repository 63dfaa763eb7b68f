/** CONNECT handling, byte-exact over raw TCP. */
import assert from "node:assert/strict";
import { EXTERNAL, scoped, startBroker, uid } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import * as raw from "../helpers/raw.ts";
import { PacketType as T } from "../helpers/raw.ts";

Deno.test("the broker checks CONNECT packets", async (t) => {
  const broker = await startBroker({ args: ["--mqttwk.broker.connect-timeout=1"] });
  const open = () => raw.RawClient.open(broker.host, broker.port);
  try {
    await t.step("a valid CONNECT gets CONNACK 20 02 00 00", () =>
      scoped(async (defer) => {
        const c = await open();
        defer(c.close);
        await c.write(raw.connect({ clientId: uid("c"), cleanSession: true }));
        const ack = await c.expect(T.CONNACK);
        assert.equal(raw.hex(ack.bytes), "20 02 00 00");
        await c.write(raw.pingreq());
        assert.equal(raw.hex((await c.expect(T.PINGRESP)).bytes), "d0 00");
      }));

    await t.step(
      "an MQTT 3.1 CONNECT (MQIsdp, level 3) is accepted",
      () =>
        scoped(async (defer) => {
          const c = await open();
          defer(c.close);
          await c.write(
            raw.connect({
              protocolName: "MQIsdp",
              protocolLevel: 3,
              clientId: "mqisdp-" + uid(""),
            }),
          );
          const ack = await c.expect(T.CONNACK);
          assert.equal(raw.hex(ack.bytes), "20 02 00 00");
        }),
    );

    await t.step(
      "MQTT 3.1: an empty client id is refused with 0x02, one longer than 23 characters accepted",
      () =>
        scoped(async (defer) => {
          const empty = await open();
          defer(empty.close);
          await empty.write(
            raw.connect({ protocolName: "MQIsdp", protocolLevel: 3, clientId: "" }),
          );
          assert.equal(raw.hex((await empty.expect(T.CONNACK)).bytes), "20 02 00 02");
          await empty.expectClosed(3_000);
          // As Mosquitto does: the 3.1 limit of 23 characters is not enforced.
          const long = await open();
          defer(long.close);
          await long.write(
            raw.connect({
              protocolName: "MQIsdp",
              protocolLevel: 3,
              clientId: uid("x".repeat(30)),
            }),
          );
          assert.equal(raw.hex((await long.expect(T.CONNACK)).bytes), "20 02 00 00");
        }),
    );

    await t.step(
      "a zero-length client id with clean session 0 is refused with 0x02, then closed",
      () =>
        scoped(async (defer) => {
          const c = await open();
          defer(c.close);
          await c.write(raw.connect({ clientId: "", cleanSession: false }));
          const ack = await c.expect(T.CONNACK);
          assert.equal(raw.hex(ack.bytes), "20 02 00 02");
          await c.expectClosed(3_000);
        }),
    );

    await t.step(
      "a zero-length client id with clean session 1 is accepted",
      () =>
        scoped(async (defer) => {
          const c = await open();
          defer(c.close);
          await c.write(raw.connect({ clientId: "", cleanSession: true }));
          const ack = await c.expect(T.CONNACK);
          assert.equal(raw.hex(ack.bytes), "20 02 00 00");
          await c.write(raw.pingreq());
          await c.expect(T.PINGRESP);
        }),
    );

    await t.step(
      "an unknown protocol level is refused with 0x01, then closed",
      () =>
        scoped(async (defer) => {
          const c = await open();
          defer(c.close);
          await c.write(raw.connect({ clientId: uid("c"), protocolLevel: 7 }));
          const ack = await c.expect(T.CONNACK);
          assert.equal(raw.hex(ack.bytes), "20 02 00 01");
          await c.expectClosed(3_000);
        }),
    );

    await t.step(
      "a second CONNECT on the same connection closes it",
      () =>
        scoped(async (defer) => {
          const c = await open();
          defer(c.close);
          const id = uid("c");
          await c.write(raw.connect({ clientId: id }));
          await c.expect(T.CONNACK);
          await c.write(raw.connect({ clientId: id }), true);
          const extra = await c.expectClosed(3_000);
          assert.deepEqual(extra.map(raw.describe), [], "no answer to the second CONNECT");
        }),
    );

    await t.step(
      "a PUBLISH before CONNECT closes the connection and is not routed",
      () =>
        scoped(async (defer) => {
          const p = uid("preconnect");
          const sub = await connectMqttJs(broker.url);
          defer(sub.close);
          await sub.subscribe(`${p}/#`, 1);
          const c = await open();
          defer(c.close);
          await c.write(raw.publish({ topic: `${p}/t`, payload: "sneaky", qos: 0 }), true);
          const extra = await c.expectClosed(3_000);
          assert.deepEqual(extra.map(raw.describe), []);
          await sub.publish(`${p}/marker`, "end", { qos: 1 });
          // The broker closed the connection before the marker was published, so a routed
          // pre-CONNECT PUBLISH would have arrived before it.
          await sub.inbox.waitFor((m) => m.topic === `${p}/marker`);
          assert.deepEqual(sub.inbox.on(`${p}/t`), [], "the pre-CONNECT PUBLISH was routed");
        }),
    );

    await t.step({
      name: "a connection that sends no CONNECT within the connect timeout is closed",
      ignore: EXTERNAL, // needs --mqttwk.broker.connect-timeout
      fn: () =>
        scoped(async (defer) => {
          const c = await open();
          defer(c.close);
          const t0 = performance.now();
          await c.expectClosed(4_000);
          const elapsed = performance.now() - t0;
          assert.ok(elapsed >= 500, `closed after ${elapsed} ms, before the 1 s timeout`);
        }),
    });

    await t.step(
      "keepalive 0 means no timeout: a quiet client stays connected",
      () =>
        scoped(async (defer) => {
          const c = await open();
          defer(c.close);
          await c.write(raw.connect({ clientId: uid("ka0"), keepAlive: 0 }));
          await c.expect(T.CONNACK);
          // Longer than the 1 s connect timeout and than any keepalive rounding.
          await c.expectSilence(2_500);
          await c.write(raw.pingreq());
          await c.expect(T.PINGRESP);
        }),
    );

    await t.step(
      "packets sent right behind CONNECT, in the same write, are handled in order after CONNACK",
      () =>
        scoped(async (defer) => {
          const c = await open();
          defer(c.close);
          const topic = `pipe/${uid("t")}`;
          // One TCP write: CONNECT, SUBSCRIBE, a QoS 1 PUBLISH to that subscription, PINGREQ.
          await c.write(raw.concat(
            raw.connect({ clientId: uid("pipe"), cleanSession: true }),
            raw.subscribe(1, [[topic, 1]]),
            raw.publish({ topic, qos: 1, packetId: 7, payload: "self" }),
            raw.pingreq(),
          ));
          const order: string[] = [];
          for (let i = 0; i < 5; i++) order.push((await c.next()).name);
          assert.deepEqual(
            order.filter((n) => n !== "PUBLISH"),
            ["CONNACK", "SUBACK", "PUBACK", "PINGRESP"],
          );
          assert.equal(order[0], "CONNACK");
          assert.ok(order.includes("PUBLISH"), `got ${order.join(", ")}`);
          assert.ok(order.indexOf("PUBLISH") > order.indexOf("SUBACK"));
        }),
    );
  } finally {
    await broker.stop();
  }
});
