/**
 * Issue 16, finding 8: a new subscriber to 100,000 retained messages receives every one of them
 * when it reads at full speed. The burst used to overflow the 1 MiB outbound buffer and shed its
 * QoS 0 copies (36-38k arrived); now it is fed at the pace the socket drains.
 */
import assert from "node:assert/strict";
import { startBroker } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { waitFor } from "../helpers/wait.ts";

const RETAINED = 100_000;

Deno.test({
  name: "a new subscriber to 100,000 retained messages receives all of them over TCP",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const broker = await startBroker();
    try {
      const pub = await connectMqttJs(broker.url, { clientId: "retained-setter" });
      const payload = "x".repeat(64);
      for (let i = 0; i < RETAINED; i++) {
        pub.client.publish(`ret/${i % 100}/${i}`, payload, { qos: 0, retain: true });
      }
      // The broker handles one connection's packets in order: once it answers this, every
      // retained message above is stored.
      await pub.sync();
      await pub.close();

      const sub = await connectMqttJs(broker.url, { clientId: "retained-reader" });
      const seen = new Set<string>();
      let retainFlags = 0;
      sub.client.on("message", (topic, _payload, packet) => {
        seen.add(topic);
        if (packet.retain) retainFlags++;
      });
      const started = performance.now();
      await sub.subscribe("ret/#", 0);
      await waitFor(() => seen.size >= RETAINED, {
        what: `${RETAINED} retained messages`,
        timeout: 60_000,
        interval: 50,
        detail: () => `${seen.size} received`,
      });
      const ms = performance.now() - started;
      // Nothing beyond them either: the broker answers this only after all it wrote before.
      await sub.sync();
      console.log(
        `retained burst: ${seen.size} of ${RETAINED} distinct retained messages received ` +
          `(${retainFlags} with RETAIN=1) in ${ms.toFixed(0)} ms ` +
          `(${(seen.size / (ms / 1000)).toFixed(0)} msg/s)`,
      );
      assert.equal(seen.size, RETAINED);
      assert.equal(retainFlags, RETAINED);
      await sub.close();
    } finally {
      await broker.stop();
    }
  },
});
