/**
 * The retained set is bounded (issue 16: anonymous clients must not grow the broker's memory
 * without bound): at `max-retained-messages` or `max-retained-bytes` a retained PUBLISH to a new
 * topic is still delivered but not stored, as EMQX's retainer does; replacing and clearing an
 * existing topic's message still work; a 5.0 publisher at QoS 1/2 is refused with 0x97 Quota
 * exceeded (and its message goes nowhere); the broker logs why.
 */
import assert from "node:assert/strict";
import { scoped, startBroker, uid } from "../helpers/broker.ts";
import { type Client, connectMqttJs } from "../helpers/mqttjs.ts";

/** The retained messages a new subscriber to `filter` gets, by topic. */
async function retainedOf(url: string, filter: string): Promise<Map<string, string>> {
  const sub = await connectMqttJs(url);
  try {
    await sub.subscribe(filter, 0);
    await sub.sync();
    return new Map(sub.inbox.messages.filter((m) => m.retain).map((m) => [m.topic, m.payload]));
  } finally {
    await sub.close();
  }
}

/** Publishes and returns the PUBACK's reason code (mqtt.js rejects on codes ≥ 0x80). */
async function pubackCode(c: Client, topic: string, payload: string): Promise<number> {
  try {
    const packet = await c.client.publishAsync(topic, payload, { qos: 1, retain: true });
    return (packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0;
  } catch (e) {
    const code = (e as { code?: number }).code;
    if (typeof code === "number") return code;
    throw e;
  }
}

Deno.test("at max-retained-messages a new retained topic is delivered but not stored; replacing, clearing and 5.0's 0x97 work", async () => {
  const broker = await startBroker({ args: ["--mqttwk.broker.max-retained-messages=50"] });
  try {
    await scoped(async (defer) => {
      const base = uid("rlim");
      const live = await connectMqttJs(broker.url);
      defer(live.close);
      await live.subscribe(`${base}/#`, 1);
      const pub = await connectMqttJs(broker.url);
      defer(pub.close);
      for (let i = 0; i < 60; i++) {
        await pub.publish(`${base}/${i}`, `v${i}`, { qos: 1, retain: true });
      }
      // Every one delivered to the subscriber that was there...
      await live.inbox.waitForCount(60, (m) => m.topic.startsWith(`${base}/`));
      // ...but only the first 50 kept for a new one.
      let kept = await retainedOf(broker.url, `${base}/#`);
      console.log(`60 retained topics published with the limit at 50: ${kept.size} stored`);
      assert.equal(kept.size, 50);
      assert.equal(kept.get(`${base}/49`), "v49");
      assert.equal(kept.has(`${base}/50`), false);
      await broker.waitForLog(/retained message for \S+ not stored: the retained set is full/);
      assert.match(broker.logs(), /mqttwk\.broker\.max-retained-messages 50/);

      // At the limit: a topic's message can still be replaced, and clearing one frees a place.
      await pub.publish(`${base}/0`, "v0-new", { qos: 1, retain: true });
      await pub.publish(`${base}/1`, "", { qos: 1, retain: true });
      await pub.publish(`${base}/60`, "v60", { qos: 1, retain: true });
      kept = await retainedOf(broker.url, `${base}/#`);
      assert.equal(kept.size, 50);
      assert.equal(kept.get(`${base}/0`), "v0-new");
      assert.equal(kept.has(`${base}/1`), false);
      assert.equal(kept.get(`${base}/60`), "v60");

      // 5.0 at QoS 1: told 0x97, and the refused message goes nowhere. Replacing is still 0x00.
      const v5 = await connectMqttJs(broker.url, { protocolVersion: 5 });
      defer(v5.close);
      assert.equal(await pubackCode(v5, `${base}/v5-new`, "refused"), 0x97);
      assert.equal(await pubackCode(v5, `${base}/2`, "v2-by-5.0"), 0);
      // QoS 0 has no ack to refuse with: delivered, not stored.
      await v5.publish(`${base}/v5-qos0`, "qos0", { qos: 0, retain: true });
      await live.inbox.waitFor((m) => m.topic === `${base}/v5-qos0`);
      await live.sync();
      assert.equal(live.inbox.on(`${base}/v5-new`).length, 0, "a refused PUBLISH is not delivered");
      kept = await retainedOf(broker.url, `${base}/#`);
      assert.equal(kept.get(`${base}/2`), "v2-by-5.0");
      assert.equal(kept.has(`${base}/v5-new`), false);
      assert.equal(kept.has(`${base}/v5-qos0`), false);
      assert.equal(kept.size, 50);
    });
  } finally {
    await broker.stop();
  }
});

Deno.test("max-retained-bytes counts payload, topic and 256 bytes per message", async () => {
  // 10,000 bytes: seven messages of 1,000-byte payloads on ~20-character topics (1,276 each).
  const broker = await startBroker({ args: ["--mqttwk.broker.max-retained-bytes=10000"] });
  try {
    await scoped(async (defer) => {
      const base = uid("rbyt");
      const pub = await connectMqttJs(broker.url);
      defer(pub.close);
      const payload = "x".repeat(1000);
      for (let i = 0; i < 10; i++) {
        await pub.publish(`${base}/${i}`, payload, { qos: 1, retain: true });
      }
      const kept = await retainedOf(broker.url, `${base}/#`);
      const each = 1000 + `${base}/0`.length + 256;
      console.log(
        `10 retained messages of ${each} counted bytes under 10,000: ${kept.size} stored`,
      );
      assert.equal(kept.size, Math.floor(10_000 / each));
      // Replacing a stored message with a smaller one always fits.
      await pub.publish(`${base}/0`, "small", { qos: 1, retain: true });
      assert.equal((await retainedOf(broker.url, `${base}/0`)).get(`${base}/0`), "small");
    });
  } finally {
    await broker.stop();
  }
});
