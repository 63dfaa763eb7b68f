/**
 * Chaos: the Kafka bridge at-least-once while Kafka itself is SIGKILLed and restarted mid-run
 * (issue 17's "Kafka restart"). Numbered QoS 1 publishers send at full speed; a PUBACK may only
 * come once Kafka has the record, so every PUBACKed message must be in Kafka at least once when
 * read back from the beginning with a consumer. Duplicates are allowed (at-least-once) and
 * counted; order per publisher must hold (records are keyed by MQTT topic, one per publisher, so
 * each publisher's records share a partition, and the producer is idempotent).
 *
 * Bounded for CI (two kills, 2 s down); MQTTWK_CHAOS_LONG=1 (`deno task chaos`) kills Kafka 6
 * times for 10 s each; MQTTWK_CHAOS_KAFKA_KILLS overrides the count.
 */
import assert from "node:assert/strict";
import { InvariantChecker } from "./invariants.ts";
import { ChaosPublisher } from "./driver.ts";
import { ChaosNode } from "./node.ts";
import { between, LONG, PUBLISHERS, tempDir, WINDOW } from "./config.ts";
import { createTopic, KafkaReader, kafkaTopic, startTestKafka } from "../helpers/kafka.ts";

const KAFKA_KILLS = Number(Deno.env.get("MQTTWK_CHAOS_KAFKA_KILLS") ?? (LONG ? 6 : 2));
/** How long Kafka stays dead each time. */
const DOWN_MS = LONG ? 10_000 : 2_000;
/** Acknowledged messages between two kills: at least, at most. */
const BETWEEN: [number, number] = LONG ? [5_000, 30_000] : [300, 2_000];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test({
  name: "every message PUBACKed through the Kafka bridge is in Kafka after Kafka is SIGKILLed",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const kafka = await startTestKafka();
    if (!kafka) return;
    const dir = tempDir("kafka");
    const topic = kafkaTopic("chaos");
    const checker = new InvariantChecker(`Kafka SIGKILL x${KAFKA_KILLS}, QoS 1 at-least-once`);
    let node: ChaosNode | null = null;
    let pubs: ChaosPublisher[] = [];
    let reader: KafkaReader | null = null;
    try {
      await createTopic(kafka.bootstrap, topic);
      node = new ChaosNode([
        `--data-dir=${dir}`,
        "--mqttwk.broker.kafka.broker-enabled=true",
        `--mqttwk.broker.kafka.bootstrap.servers=${kafka.bootstrap}`,
        `--mqttwk.broker.kafka.producer.topic=${topic}`,
        "--mqttwk.broker.kafka.delivery=at-least-once",
        "--mqttwk.broker.kafka.reconnect.backoff.ms=50",
        "--mqttwk.broker.kafka.reconnect.backoff.max.ms=500",
      ]);
      await node.start();
      pubs = Array.from(
        { length: PUBLISHERS },
        (_, i) => new ChaosPublisher(`kafka${i}`, node!, checker, 1, WINDOW),
      );
      for (let k = 0; k < KAFKA_KILLS; k++) {
        const before = checker.ackedCount;
        const target = before + between(...BETWEEN);
        while (checker.ackedCount < target) await sleep(5);
        await kafka.kill();
        const atKill = checker.ackedCount;
        await sleep(DOWN_MS);
        // PUBACKs of messages sent while Kafka is dead must wait (a few already on the wire
        // when it died may still land).
        const whileDown = checker.ackedCount - atKill;
        const restarting = Date.now();
        await kafka.start();
        console.log(
          `kill ${k + 1}: ${atKill} acked before, ${whileDown} acknowledged while Kafka was ` +
            `down, back after ${DOWN_MS + Date.now() - restarting} ms`,
        );
        // Only what Kafka had taken before it died may still be acknowledged: at most what the
        // publishers had in flight.
        assert.ok(
          whileDown <= PUBLISHERS * WINDOW,
          `${whileDown} PUBACKs while Kafka was down (more than the ${
            PUBLISHERS * WINDOW
          } in flight)`,
        );
      }
      // Some traffic after the last restart, then the publishers settle.
      const after = checker.ackedCount + between(...BETWEEN);
      while (checker.ackedCount < after) await sleep(5);
      for (const p of pubs) p.stop();
      let lastAcked = -1;
      let still = Date.now();
      while (!pubs.every((p) => p.settled) && Date.now() - still < 60_000) {
        if (checker.ackedCount !== lastAcked) [lastAcked, still] = [checker.ackedCount, Date.now()];
        await sleep(50);
      }

      // Read everything back from the beginning; wait while records keep coming.
      reader = await KafkaReader.open(kafka.bootstrap, [topic]);
      let seen = 0;
      let seenBefore = 0;
      let moved = Date.now();
      while (Date.now() - moved < 30_000) {
        for (; seen < reader.records.length; seen++) {
          checker.received(reader.records[seen].value.toString());
        }
        if (checker.missing() === 0) break;
        if (seen !== seenBefore) [seenBefore, moved] = [seen, Date.now()];
        await sleep(100);
      }
      // Late duplicates would be in the topic already; a short grace to count them.
      await sleep(1000);
      for (; seen < reader.records.length; seen++) {
        checker.received(reader.records[seen].value.toString());
      }
      checker.check({ duplicatesAllowed: true });
    } catch (e) {
      if (node) console.log(node.logs().slice(-4000));
      throw e;
    } finally {
      await reader?.close().catch(() => {});
      for (const p of pubs) await p.end();
      await node?.stop();
      await kafka.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
