/**
 * linger.ms in the egress pipeline: it gathers records only while Kafka works on an earlier
 * request. A record offered while Kafka is idle goes at once, and a linger ends when the request
 * it waits behind is answered (or a batch' worth is there). The linger here is a minute, so any
 * wait for it would time the test out.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Egress } from "../../src/bridge/kafka/egress.ts";
import type { OutRecord } from "../../src/bridge/kafka/records.ts";
import { silentLogger } from "../../src/log.ts";
import { waitFor } from "../helpers/wait.ts";

/** A producer whose requests wait until the test answers them. */
class HeldKafka {
  requests: { values: string[]; answer: () => void }[] = [];

  producer() {
    return {
      connect: () => Promise.resolve(),
      send: (records: OutRecord[]) => {
        const { promise, resolve } = Promise.withResolvers<void>();
        this.requests.push({ values: records.map((r) => r.value.toString()), answer: resolve });
        return promise;
      },
      disconnect: () => Promise.resolve(),
    };
  }
}

function rec(value: string, bytes = 100): OutRecord {
  return { topic: "t", key: null, value: Buffer.from(value), headers: {}, timestamp: "0", bytes };
}

function pipeline(kafka: HeldKafka, batchBytes = 16384): Egress {
  const e = new Egress({
    maxMessages: 1000,
    maxBytes: 1_000_000,
    lingerMs: 60_000,
    batchBytes,
    maxRequestBytes: 1_000_000,
    backoffMs: 5,
    backoffMaxMs: 20,
    maxInFlight: 2,
    createProducer: () => kafka.producer(),
    isPermanent: () => false,
    log: silentLogger,
    target: "fake:9092",
  });
  e.start();
  return e;
}

const requests = (kafka: HeldKafka, n: number) =>
  waitFor(() => kafka.requests.length >= n, { what: `${n} requests`, interval: 1 });

Deno.test("while Kafka has no request of ours, a record goes at once whatever linger.ms says", async () => {
  const kafka = new HeldKafka();
  const e = pipeline(kafka);
  await waitFor(() => e.connected, { what: "connected", interval: 1 });
  const ack = e.offer(rec("a"), true)!;
  await requests(kafka, 1);
  kafka.requests[0].answer();
  await ack;
  await e.stop();
});

Deno.test("records wait behind a request Kafka works on, and go as soon as it is answered", async () => {
  const kafka = new HeldKafka();
  const e = pipeline(kafka);
  await waitFor(() => e.connected, { what: "connected", interval: 1 });
  const first = e.offer(rec("a"), true)!;
  await requests(kafka, 1);
  const later = [e.offer(rec("b"), true)!, e.offer(rec("c"), true)!];
  // Fixed on purpose: the second request must not go while the first is out ("not yet").
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(kafka.requests.length, 1, "lingering behind the first request");
  kafka.requests[0].answer();
  await first;
  await requests(kafka, 2);
  assert.deepEqual(kafka.requests[1].values, ["b", "c"], "gathered while waiting");
  kafka.requests[1].answer();
  await Promise.all(later);
  await e.stop();
});

Deno.test("a batch' worth of records does not linger even while Kafka is busy", async () => {
  const kafka = new HeldKafka();
  const e = pipeline(kafka, 250);
  await waitFor(() => e.connected, { what: "connected", interval: 1 });
  const acks = [e.offer(rec("a"), true)!];
  await requests(kafka, 1);
  acks.push(e.offer(rec("b"), true)!, e.offer(rec("c"), true)!, e.offer(rec("d"), true)!);
  await requests(kafka, 2);
  assert.deepEqual(kafka.requests[1].values, ["b", "c", "d"]);
  for (const r of kafka.requests) r.answer();
  await Promise.all(acks);
  await e.stop();
});
