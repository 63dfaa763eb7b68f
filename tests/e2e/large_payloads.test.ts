/**
 * Large payloads over real TCP with mqtt.js: the broker writes them as they are, gathered with
 * the header in front of them (output.ts, tcp_handle.ts); small and large mixed arrive whole and
 * in order, to one subscriber and to two.
 */
import assert from "node:assert/strict";
import { scoped } from "../helpers/broker.ts";
import { startApp } from "../helpers/app.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";

/** A payload that says which message it is all along, so a torn or mixed one shows. */
function payload(i: number, size: number): string {
  const unit = `<${i}>`;
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}

const SIZES = [10, 70_000, 20, 16_384, 100_000, 5, 200_000, 300, 65_536, 1];

for (const qos of [0, 1] as const) {
  Deno.test(`large payloads at QoS ${qos} over TCP arrive whole and in order, to one and to two subscribers`, () =>
    scoped(async (defer) => {
      const { app, url } = await startApp();
      defer(() => app.stop());
      const one = await connectMqttJs(url);
      defer(one.close);
      const twoA = await connectMqttJs(url);
      defer(twoA.close);
      const twoB = await connectMqttJs(url);
      defer(twoB.close);
      await one.subscribe("big/one", qos);
      await twoA.subscribe("big/two", qos);
      await twoB.subscribe("big/two", qos);
      const pub = await connectMqttJs(url);
      defer(pub.close);
      // Not awaited one by one: the broker gets them back to back, many per read.
      await Promise.all(
        ["big/one", "big/two"].flatMap((topic) =>
          SIZES.map((size, i) => pub.publish(topic, payload(i, size), { qos }))
        ),
      );
      for (const [c, topic] of [[one, "big/one"], [twoA, "big/two"], [twoB, "big/two"]] as const) {
        const got = await c.inbox.waitForCount(SIZES.length, (m) => m.topic === topic);
        assert.deepEqual(
          got.map((m) => m.payload.length),
          SIZES,
          `${topic}: sizes in order`,
        );
        got.forEach((m, i) => assert.equal(m.payload, payload(i, SIZES[i]), `${topic} #${i}`));
      }
    }));
}
