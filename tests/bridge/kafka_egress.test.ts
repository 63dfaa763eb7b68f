/** The egress pipeline against a scripted producer: batching, acknowledgements, overflow, outages. */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { BufferFullError, Egress, type EgressOptions } from "../../src/bridge/kafka/egress.ts";
import { packBatch } from "../../src/bridge/kafka/batch_wire.ts";
import {
  type BridgeRecord,
  messageRecord,
  messageRef,
  type OutRecord,
  type RecordContext,
} from "../../src/bridge/kafka/records.ts";
import type { ClientInfo } from "../../src/broker/model.ts";
import { MessageFactory } from "../../src/broker/messages.ts";
import { type Logger, silentLogger } from "../../src/log.ts";
import { waitFor } from "../helpers/wait.ts";

/** A producer whose availability the test switches; it records every request. */
class FakeKafka {
  up = true;
  /** Payloads of records that count as too large for Kafka. */
  tooLarge = new Set<string>();
  requests: string[][] = [];
  stored: string[] = [];
  connects = 0;
  sendDelayMs = 0;

  producer() {
    return {
      connect: () => {
        this.connects++;
        return this.up ? Promise.resolve() : Promise.reject(new Error("ECONNREFUSED"));
      },
      send: async (records: OutRecord[]) => {
        // A slow Kafka, as the test asks: the latency is the scenario, not a wait.
        if (this.sendDelayMs) await new Promise((r) => setTimeout(r, this.sendDelayMs));
        const values = records.map((r) => r.value.toString());
        this.requests.push(values);
        if (!this.up) throw new Error("connection closed");
        if (values.some((v) => this.tooLarge.has(v))) {
          throw Object.assign(new Error("too large"), { type: "MESSAGE_TOO_LARGE" });
        }
        this.stored.push(...values);
      },
      disconnect: () => Promise.resolve(),
    };
  }
}

const hex = (b: ArrayBuffer) => Buffer.from(b).toString("hex");

const client: ClientInfo = {
  clientId: "c",
  remoteAddress: "127.0.0.1:1",
  transport: "tcp",
  protocolVersion: 4,
};

function rec(value: string, bytes = 100): OutRecord {
  return {
    topic: "t",
    key: null,
    value: Buffer.from(value),
    headers: {},
    timestamp: "0",
    bytes,
  };
}

function pipeline(kafka: FakeKafka, over: Partial<EgressOptions> = {}): Egress {
  const e = new Egress({
    maxMessages: 1000,
    maxBytes: 1_000_000,
    lingerMs: 2,
    batchBytes: 16384,
    maxRequestBytes: 1_000_000,
    backoffMs: 5,
    backoffMaxMs: 20,
    createProducer: () => kafka.producer(),
    isPermanent: (err) => (err as { type?: string }).type === "MESSAGE_TOO_LARGE",
    log: silentLogger,
    target: "fake:9092",
    ...over,
  });
  e.start();
  return e;
}

/** Waits for the pipeline's producer to be connected. */
function connected(e: Egress): Promise<true> {
  return waitFor(() => e.connected, { what: "the producer to connect", interval: 2 });
}

/** Whether `p` is still pending after the current macrotask queue drains. */
async function pending(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(() => settled = true, () => settled = true);
  // Fixed on purpose: "not settled for a while" has no event to wait on.
  await new Promise((r) => setTimeout(r, 20));
  return !settled;
}

Deno.test("records offered together go to Kafka in one request", async () => {
  const kafka = new FakeKafka();
  const e = pipeline(kafka);
  await connected(e);
  const acks = [];
  for (let i = 0; i < 50; i++) acks.push(e.offer(rec(`m${i}`), true));
  await Promise.all(acks);
  assert.equal(kafka.requests.length, 1);
  assert.equal(kafka.stored.length, 50);
  assert.equal(e.counters.produced, 50);
  assert.equal(e.counters.batches, 1);
  await e.stop();
});

Deno.test("a request never exceeds max.request.size, but a lone large record is still sent", async () => {
  const kafka = new FakeKafka();
  const e = pipeline(kafka, { maxRequestBytes: 250 });
  await connected(e);
  const acks = [e.offer(rec("big", 400), true)];
  for (let i = 0; i < 5; i++) acks.push(e.offer(rec(`s${i}`, 100), true));
  await Promise.all(acks);
  assert.deepEqual(kafka.requests, [["big"], ["s0", "s1"], ["s2", "s3"], ["s4"]]);
  await e.stop();
});

Deno.test("the acknowledgement waits for Kafka, and fire-and-forget returns nothing to wait for", async () => {
  const kafka = new FakeKafka();
  kafka.sendDelayMs = 50;
  const e = pipeline(kafka);
  await connected(e);
  assert.equal(e.offer(rec("ff"), false), undefined);
  const ack = e.offer(rec("alo"), true)!;
  assert.ok(await pending(ack), "ack must wait for Kafka");
  await ack;
  assert.deepEqual(kafka.stored, ["ff", "alo"]);
  await e.stop();
});

Deno.test("while Kafka is down records are buffered and acknowledged once it is back", async () => {
  const kafka = new FakeKafka();
  kafka.up = false;
  const e = pipeline(kafka);
  const acks = [1, 2, 3].map((i) => e.offer(rec(`m${i}`), true)!);
  e.offer(rec("q0"), false);
  await waitFor(() => e.counters.connectFailures > 1, { what: "a retried connect", interval: 2 });
  assert.ok(await pending(acks[0]));
  assert.equal(e.buffered, 4);
  assert.ok(e.counters.connectFailures > 1, "keeps retrying");
  kafka.up = true;
  await Promise.all(acks);
  assert.deepEqual(kafka.stored, ["m1", "m2", "m3", "q0"]);
  assert.equal(e.buffered, 0);
  assert.equal(e.bufferedBytes, 0);
  await e.stop();
});

Deno.test("a send that fails is retried on a new connection, in order", async () => {
  const kafka = new FakeKafka();
  const e = pipeline(kafka);
  await connected(e);
  kafka.up = false;
  const acks = [e.offer(rec("a"), true)!, e.offer(rec("b"), true)!];
  await waitFor(() => kafka.requests.length >= 1 && !e.connected, {
    what: "a failed send and the connection dropped",
    interval: 2,
  });
  kafka.up = true;
  await Promise.all(acks);
  assert.deepEqual(kafka.stored, ["a", "b"]);
  assert.ok(kafka.connects >= 2);
  await e.stop();
});

Deno.test("when the buffer is full, at-least-once is refused and fire-and-forget dropped", async () => {
  const kafka = new FakeKafka();
  kafka.up = false;
  const warnings: string[] = [];
  const log: Logger = { ...silentLogger, warn: (m) => warnings.push(m) };
  const e = pipeline(kafka, { maxMessages: 3, log });
  const kept = [e.offer(rec("1"), true)!, e.offer(rec("2"), true)!];
  e.offer(rec("3"), false);
  const refused = e.offer(rec("4"), true)!;
  await assert.rejects(refused, BufferFullError);
  assert.equal(e.offer(rec("5"), false), undefined);
  assert.equal(e.counters.rejected, 1);
  assert.equal(e.counters.dropped, 1);
  assert.equal(e.buffered, 3);
  assert.ok(warnings.some((w) => w.includes("kafka buffer full")), warnings.join("\n"));
  kafka.up = true;
  await Promise.all(kept);
  assert.deepEqual(kafka.stored, ["1", "2", "3"]);
  await e.stop();
});

Deno.test("the byte bound of the buffer holds as well as the count", async () => {
  const kafka = new FakeKafka();
  kafka.up = false;
  const e = pipeline(kafka, { maxBytes: 250 });
  e.offer(rec("a", 100), false);
  e.offer(rec("b", 100), false);
  e.offer(rec("c", 100), false);
  assert.equal(e.buffered, 2);
  assert.equal(e.counters.dropped, 1);
  await e.stop(0);
});

Deno.test("a record Kafka refuses for good is dropped without holding up the others", async () => {
  const kafka = new FakeKafka();
  kafka.tooLarge.add("bad");
  const e = pipeline(kafka);
  await connected(e);
  const a = e.offer(rec("a"), true)!;
  const bad = e.offer(rec("bad"), true)!;
  const c = e.offer(rec("c"), true)!;
  await a;
  await assert.rejects(bad, /refused/);
  await c;
  assert.deepEqual(kafka.stored, ["a", "c"]);
  assert.equal(e.counters.failed, 1);
  await e.stop();
});

Deno.test("stopping gives up on what Kafka never got and refuses later records", async () => {
  const kafka = new FakeKafka();
  kafka.up = false;
  const e = pipeline(kafka);
  const ack = e.offer(rec("x"), true)!;
  e.offer(rec("y"), false);
  await e.stop(50);
  await assert.rejects(ack, /stopped/);
  assert.equal(e.counters.abandoned, 2);
  await assert.rejects(e.offer(rec("z"), true) as Promise<void>, /stopped/);
});

Deno.test("stopping first delivers what is buffered when Kafka is there", async () => {
  const kafka = new FakeKafka();
  kafka.sendDelayMs = 30;
  const e = pipeline(kafka);
  await connected(e);
  for (let i = 0; i < 10; i++) e.offer(rec(`m${i}`), false);
  await e.stop();
  assert.equal(kafka.stored.length, 10);
  assert.equal(e.counters.abandoned, 0);
});

Deno.test("the callback form settles each record once, in order, and never before it returns", async () => {
  const kafka = new FakeKafka();
  kafka.up = false;
  const e = pipeline(kafka, { maxMessages: 3 });
  const calls: string[] = [];
  const done = (name: string) => ({
    sinkDone: (err?: Error) => calls.push(err ? `${name}:${err.name}` : name),
  });
  e.offerThen(rec("1"), done("1"));
  e.offerThen(rec("2"), undefined);
  e.offerThen(rec("3"), done("3"));
  // Full: the refusal comes later, not from inside offerThen.
  e.offerThen(rec("4"), done("4"));
  assert.deepEqual(calls, []);
  await Promise.resolve();
  assert.deepEqual(calls, ["4:BufferFullError"]);
  kafka.up = true;
  await waitFor(() => calls.length === 3, { what: "the records to be settled", interval: 2 });
  assert.deepEqual(calls, ["4:BufferFullError", "1", "3"]);
  assert.deepEqual(kafka.stored, ["1", "2", "3"]);
  // An acknowledgement that throws neither stops the pipeline nor the others.
  e.offerThen(rec("5"), {
    sinkDone: () => {
      throw new Error("client gone");
    },
  });
  e.offerThen(rec("6"), done("6"));
  await waitFor(() => calls.length === 4, { what: "the next record", interval: 2 });
  assert.equal(calls[3], "6");
  // Given up at stop: refused once, never acknowledged afterwards.
  kafka.up = false;
  e.offerThen(rec("7"), done("7"));
  await e.stop(20);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(calls.slice(4), ["7:Error"]);
});

Deno.test("records Kafka has are reused for later messages, never while still queued or retried", async () => {
  // What Kafka got, record by record, as the bytes of a one-record batch (taken at send time).
  const got: string[] = [];
  let up = true;
  // Its own producer: one that sees the records themselves, not their values.
  const e = pipeline(new FakeKafka(), {
    lingerMs: 0,
    createProducer: () => ({
      connect: () => Promise.resolve(),
      send: (records: BridgeRecord[]) => {
        const bytes = records.map((r) => hex(packBatch([r])));
        if (!up) return Promise.reject(new Error("connection closed"));
        got.push(...bytes);
        return Promise.resolve();
      },
      disconnect: () => Promise.resolve(),
    }),
  });
  await connected(e);
  const factory = new MessageFactory("n1");
  const ctx: RecordContext = {
    keyMode: "topic",
    format: "raw",
    brokerId: "b",
    nodeId: "n1",
    processId: "1",
  };
  const expected: string[] = [];
  const settled: string[] = [];
  const offer = (name: string) => {
    const m = factory.create(`t/${name}`, new TextEncoder().encode(name), 1, false, "c");
    expected.push(hex(packBatch([messageRecord(m, client, "out", ctx)])));
    e.offerThen(messageRef(m, "c", "out", ctx)!, { sinkDone: () => settled.push(name) });
  };
  // Delivered: their refs go back for reuse.
  for (const n of ["a1", "a2", "a3"]) offer(n);
  await waitFor(() => settled.length === 3, { what: "the first records", interval: 2 });
  // Made from the spares while Kafka fails: they stay queued for the retry...
  up = false;
  for (const n of ["b1", "b2", "b3"]) offer(n);
  await waitFor(() => !e.connected, { what: "a failed send", interval: 2 });
  // ...so these must get refs of their own.
  for (const n of ["c1", "c2", "c3"]) offer(n);
  up = true;
  await waitFor(() => settled.length === 9, { what: "every record", interval: 2 });
  assert.deepEqual(settled, ["a1", "a2", "a3", "b1", "b2", "b3", "c1", "c2", "c3"]);
  assert.deepEqual(got, expected);
  await e.stop();
});
