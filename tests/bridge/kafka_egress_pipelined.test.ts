/**
 * The egress pipeline with several produce requests in flight (as the bridge runs it), against a
 * scripted producer whose requests the test answers one by one: acknowledgements stay in order
 * and wait for Kafka, and a failed request sends it and everything after it again, in order.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Egress } from "../../src/bridge/kafka/egress.ts";
import type { OutRecord } from "../../src/bridge/kafka/records.ts";
import { silentLogger } from "../../src/log.ts";
import { waitFor } from "../helpers/wait.ts";

interface Request {
  values: string[];
  answer: (err?: Error) => void;
}

/** A producer whose requests wait until the test answers them. */
class HeldKafka {
  requests: Request[] = [];
  stored: string[] = [];
  connects = 0;

  producer() {
    return {
      connect: () => {
        this.connects++;
        return Promise.resolve();
      },
      send: (records: OutRecord[]) => {
        const values = records.map((r) => r.value.toString());
        const { promise, resolve, reject } = Promise.withResolvers<void>();
        this.requests.push({
          values,
          answer: (err) => {
            if (err) return reject(err);
            this.stored.push(...values);
            resolve();
          },
        });
        return promise;
      },
      disconnect: () => Promise.resolve(),
    };
  }
}

function rec(value: string): OutRecord {
  return {
    topic: "t",
    key: null,
    value: Buffer.from(value),
    headers: {},
    timestamp: "0",
    bytes: 100,
  };
}

function pipeline(kafka: HeldKafka): Egress {
  const e = new Egress({
    maxMessages: 1000,
    maxBytes: 1_000_000,
    lingerMs: 0,
    batchBytes: 16384,
    maxRequestBytes: 1_000_000,
    backoffMs: 5,
    backoffMaxMs: 20,
    maxInFlight: 2,
    createProducer: () => kafka.producer(),
    isPermanent: (err) => (err as { type?: string }).type === "MESSAGE_TOO_LARGE",
    log: silentLogger,
    target: "fake:9092",
  });
  e.start();
  return e;
}

const requestCount = (kafka: HeldKafka, n: number) =>
  waitFor(() => kafka.requests.length >= n, { what: `${n} requests`, interval: 1 });

/** Records acknowledged so far, in the order their acknowledgements came. */
function track(e: Egress, values: string[], order: string[]): Promise<void>[] {
  return values.map((v) => (e.offer(rec(v), true) as Promise<void>).then(() => void order.push(v)));
}

Deno.test("a second request goes out while the first waits, and acknowledgements keep their order", async () => {
  const kafka = new HeldKafka();
  const e = pipeline(kafka);
  await waitFor(() => e.connected, { what: "connected", interval: 1 });
  const acked: string[] = [];
  const first = track(e, ["a", "b"], acked);
  await requestCount(kafka, 1);
  const second = track(e, ["c"], acked);
  await requestCount(kafka, 2);
  // A third must wait: two are in flight.
  const third = track(e, ["d"], acked);
  assert.deepEqual(kafka.requests.map((r) => r.values), [["a", "b"], ["c"]]);
  // Kafka answers the second first: nothing is acknowledged before the first is stored.
  kafka.requests[1].answer();
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(acked, []);
  kafka.requests[0].answer();
  await Promise.all([...first, ...second]);
  assert.deepEqual(acked, ["a", "b", "c"]);
  await requestCount(kafka, 3);
  assert.deepEqual(kafka.requests[2].values, ["d"]);
  kafka.requests[2].answer();
  await Promise.all(third);
  assert.equal(e.counters.produced, 4);
  assert.equal(e.buffered, 0);
  assert.equal(e.bufferedBytes, 0);
  await e.stop();
});

Deno.test("when a request fails, it and the ones after it go again in order on a new connection", async () => {
  const kafka = new HeldKafka();
  const e = pipeline(kafka);
  await waitFor(() => e.connected, { what: "connected", interval: 1 });
  const acked: string[] = [];
  const all = track(e, ["a"], acked);
  await requestCount(kafka, 1);
  all.push(...track(e, ["b"], acked));
  await requestCount(kafka, 2);
  kafka.requests[0].answer(new Error("connection closed"));
  // The later request is stored by Kafka, yet sent again with the first: at least once.
  kafka.requests[1].answer();
  await requestCount(kafka, 3);
  assert.deepEqual(acked, [], "nothing acknowledged while the first is not stored");
  assert.deepEqual(kafka.requests[2].values, ["a", "b"]);
  assert.equal(kafka.connects, 2);
  kafka.requests[2].answer();
  await Promise.all(all);
  assert.deepEqual(acked, ["a", "b"]);
  assert.deepEqual(kafka.stored, ["b", "a", "b"]);
  assert.equal(e.buffered, 0);
  await e.stop();
});

Deno.test("a record refused for good while others are in flight fails alone", async () => {
  const kafka = new HeldKafka();
  const e = pipeline(kafka);
  await waitFor(() => e.connected, { what: "connected", interval: 1 });
  const a = e.offer(rec("a"), true)!;
  const bad = e.offer(rec("bad"), true)!;
  await requestCount(kafka, 1);
  const c = e.offer(rec("c"), true)!;
  await requestCount(kafka, 2);
  kafka.requests[0].answer(Object.assign(new Error("too large"), { type: "MESSAGE_TOO_LARGE" }));
  kafka.requests[1].answer(new Error("out of order sequence"));
  // One by one now: a, then bad (refused), then c.
  await requestCount(kafka, 3);
  assert.deepEqual(kafka.requests[2].values, ["a"]);
  kafka.requests[2].answer();
  await a;
  await requestCount(kafka, 4);
  assert.deepEqual(kafka.requests[3].values, ["bad"]);
  kafka.requests[3].answer(Object.assign(new Error("too large"), { type: "MESSAGE_TOO_LARGE" }));
  await assert.rejects(bad, /refused/);
  await requestCount(kafka, 5);
  assert.deepEqual(kafka.requests[4].values, ["c"]);
  kafka.requests[4].answer();
  await c;
  assert.equal(e.counters.failed, 1);
  assert.equal(e.buffered, 0);
  await e.stop();
});
