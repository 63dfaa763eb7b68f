/**
 * QoS 1 deliveries to an online persistent subscriber are written to the store only if the
 * subscriber has not acknowledged them within a grace period; the publisher's PUBACK waits for
 * one or the other. A SIGKILL at any point loses no message whose PUBACK was sent.
 */
import assert from "node:assert/strict";
import { EXTERNAL, scoped, uid } from "../helpers/broker.ts";
import { DurableBroker } from "../helpers/durability_broker.ts";
import { reportFigures, Tally } from "../helpers/figures.ts";
import * as raw from "../helpers/raw.ts";
import { PacketType as T } from "../helpers/raw.ts";

Deno.test({
  name:
    "a QoS 1 message PUBACKed while its online subscriber had not acknowledged it survives a SIGKILL",
  ignore: EXTERNAL,
  async fn() {
    const b = await DurableBroker.start();
    try {
      await scoped(async (defer) => {
        const topic = `${uid("vol")}/t`;
        const subId = uid("vol-sub");
        const { client: sub } = await b.connect({ clientId: subId, cleanSession: false });
        defer(sub.close);
        assert.deepEqual(await raw.rawSubscribe(sub, 1, [[topic, 1]]), [1]);

        const { client: pub } = await b.connect({ clientId: uid("vol-pub") });
        defer(pub.close);
        await pub.write(raw.publish({ topic, payload: "held", qos: 1, packetId: 7 }));
        const delivered = await sub.expect(T.PUBLISH);
        assert.equal(raw.text(delivered), "held");
        // The subscriber does not acknowledge: the broker must write the delivery before the
        // publisher gets its PUBACK.
        assert.equal((await pub.expect(T.PUBACK)).packetId, 7);

        await b.kill();
        await b.restart();
        const { client: again, connack } = await b.connect({
          clientId: subId,
          cleanSession: false,
        });
        defer(again.close);
        assert.equal(connack.sessionPresent, true);
        const resent = await again.expect(T.PUBLISH);
        // A QoS 1 resend of an unacknowledged delivery, DUP=1: not counted as a duplicate.
        const tally = new Tally();
        tally.add(["held"], [raw.text(resent)]);
        reportFigures("unacknowledged QoS 1 delivery across SIGKILL", {
          ...tally.totals(),
          ...b.faultFigures(),
        });
        assert.equal(raw.text(resent), "held");
        assert.equal(resent.dup, true, "resent as a duplicate");
        assert.equal(resent.packetId, delivered.packetId, "with its original packet id");
      });
    } finally {
      await b.dispose();
    }
  },
});

Deno.test({
  name: "a QoS 1 message acknowledged by its online subscriber is never written to the store",
  ignore: EXTERNAL,
  async fn() {
    const b = await DurableBroker.start();
    try {
      await scoped(async (defer) => {
        const topic = `${uid("vol")}/t`;
        const subId = uid("vol-sub");
        const { client: sub } = await b.connect({ clientId: subId, cleanSession: false });
        defer(sub.close);
        await raw.rawSubscribe(sub, 1, [[topic, 1]]);
        const { client: pub } = await b.connect({ clientId: uid("vol-pub") });
        defer(pub.close);
        for (let i = 1; i <= 20; i++) {
          await pub.write(raw.publish({ topic, payload: `m${i}`, qos: 1, packetId: i }));
          const m = await sub.expect(T.PUBLISH);
          await sub.write(raw.puback(m.packetId!));
          assert.equal((await pub.expect(T.PUBACK)).packetId, i);
        }
        await b.kill();
        await b.restart();
        const { client: again, connack } = await b.connect({
          clientId: subId,
          cleanSession: false,
        });
        defer(again.close);
        assert.equal(connack.sessionPresent, true);
        await again.expectSilence(300);
      });
    } finally {
      await b.dispose();
    }
  },
});
