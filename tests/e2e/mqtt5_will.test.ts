/**
 * MQTT 5.0 delayed wills end to end with mqtt.js (protocolVersion 5) against the broker process:
 * published after the Will Delay Interval with its properties, and not at all when the client
 * comes back to its session in time [MQTT-3.1.3-9].
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { IClientOptions } from "mqtt";
import { EXTERNAL, scoped, startBroker, uid } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";

function withDelayedWill(id: string, topic: string, payload: string): IClientOptions {
  return {
    protocolVersion: 5,
    clientId: id,
    clean: false,
    properties: { sessionExpiryInterval: 300 },
    will: {
      topic,
      payload: Buffer.from(payload),
      qos: 1,
      retain: false,
      properties: { willDelayInterval: 1, userProperties: { why: "network" } },
    },
  };
}

Deno.test({
  name:
    "mqtt.js 5.0: a delayed will comes after its delay; one resumed in time never [MQTT-3.1.3-9]",
  ignore: EXTERNAL,
  fn: () =>
    scoped(async (defer) => {
      const broker = await startBroker({ args: ["--mqttwk.broker.persistence=memory"] });
      defer(() => broker.stop());
      const t = uid("dwill");
      const sub = await connectMqttJs(broker.url, { protocolVersion: 5 });
      defer(() => sub.close());
      const props: Record<string, unknown>[] = [];
      sub.client.on("message", (_t, _p, packet) => props.push({ ...packet.properties }));
      await sub.subscribe(`${t}/#`, 1);

      const back = await connectMqttJs(broker.url, withDelayedWill(`${t}-b`, `${t}/back`, "no"));
      const gone = await connectMqttJs(broker.url, withDelayedWill(`${t}-g`, `${t}/gone`, "yes"));
      const lostAt = Date.now();
      back.client.stream.destroy();
      gone.client.stream.destroy();
      // Back within the delay, to the same session.
      const again = await connectMqttJs(broker.url, {
        ...withDelayedWill(`${t}-b`, `${t}/back`, "no"),
        will: undefined,
      });
      defer(() => again.close());
      const m = await sub.inbox.waitFor((x) => x.topic === `${t}/gone`, 5_000);
      assert.equal(m.payload, "yes");
      assert.ok(Date.now() - lostAt >= 1000, "not before the Will Delay Interval");
      assert.deepEqual({ ...(props[0].userProperties as object) }, { why: "network" });
      assert.equal(props[0].willDelayInterval, undefined);
      // Both wills fell due in the same tick: once one is in and the broker has answered a later
      // request on the subscriber's connection, the other cannot still be on its way.
      await sub.sync();
      assert.deepEqual(sub.inbox.messages.map((x) => x.topic), [`${t}/gone`]);
    }),
});
