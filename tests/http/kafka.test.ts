/**
 * A message sent through the HTTP API reaches a real Kafka through the bridge like any client's
 * publish (the original MqttWk's /send skipped Kafka).
 */
import assert from "node:assert/strict";
import { scoped } from "../helpers/broker.ts";
import { createTopic, KafkaReader, kafkaTopic, startTestKafka } from "../helpers/kafka.ts";
import { call, startHttpApp } from "./helpers.ts";

Deno.test({
  name: "the original /send and the new publish both reach Kafka through the bridge",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const kafka = await startTestKafka();
    if (!kafka) return;
    try {
      await scoped(async (defer) => {
        const topic = kafkaTopic("http");
        await createTopic(kafka.bootstrap, topic);
        const { app, base } = await startHttpApp([
          "--mqttwk.http.api-keys-file=/nonexistent/api-keys",
          "--mqttwk.broker.kafka.broker-enabled=true",
          `--mqttwk.broker.kafka.bootstrap.servers=${kafka.bootstrap}`,
          `--mqttwk.broker.kafka.producer.topic=${topic}`,
        ]);
        defer(() => app.stop());
        const reader = await KafkaReader.open(kafka.bootstrap, [topic]);
        defer(() => reader.close());

        const sent = await call(base, "/open/api/mqttwk/send", {
          method: "POST",
          body: JSON.stringify({ topic: "/topic/mqttwk", message: "wizzer ✓", qos: 1 }),
        });
        assert.deepEqual(sent.body, { code: 0, msg: "success" });
        const published = await call(base, "/api/v1/publish", {
          method: "POST",
          body: JSON.stringify({ topic: "api/kafka", payload: "new api", qos: 1 }),
        });
        assert.deepEqual(published.body, { ok: true });

        const recs = await reader.waitForCount(2);
        const by = new Map(recs.map((r) => [r.key, r]));
        assert.equal(by.get("/topic/mqttwk")?.value.toString(), "wizzer ✓");
        assert.equal(by.get("api/kafka")?.value.toString(), "new api");
        const status = await call(base, "/api/v1/status");
        assert.deepEqual(status.body.kafka, { enabled: true, healthy: true });
      });
    } finally {
      await kafka.close();
    }
  },
});
