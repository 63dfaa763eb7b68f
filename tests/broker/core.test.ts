import assert from "node:assert/strict";
import { Broker } from "../../src/broker/broker.ts";
import { encode } from "../../src/codec/encoder.ts";
import { defaultBrokerOptions } from "../../src/broker/options.ts";
import { silentLogger } from "../../src/log.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { MemoryClient } from "./memory_pipe.ts";
import { waitFor } from "../helpers/wait.ts";

const enc = new TextEncoder();

async function withBroker(fn: (b: Broker) => Promise<void>, options = {}) {
  const broker = new Broker({
    options: { ...defaultBrokerOptions, ...options },
    store: new MemoryStore(),
    log: silentLogger,
  });
  await broker.start();
  try {
    await fn(broker);
  } finally {
    await broker.close();
  }
}

Deno.test("core accepts a CONNECT over in-memory streams and routes QoS 1", async () => {
  await withBroker(async (b) => {
    const sub = new MemoryClient(b);
    assert.equal((await sub.connect("sub")).reasonCode, 0);
    await sub.send({ type: "subscribe", packetId: 1, subscriptions: [{ topic: "a/+", qos: 1 }] });
    assert.deepEqual((await sub.next("suback")).reasonCodes, [1]);
    const pub = new MemoryClient(b);
    await pub.connect("pub");
    await pub.send({
      type: "publish",
      topic: "a/b",
      payload: enc.encode("hi"),
      qos: 1,
      retain: false,
      dup: false,
      packetId: 7,
    });
    assert.equal((await pub.next("puback")).packetId, 7);
    const m = await sub.next("publish");
    assert.equal(m.topic, "a/b");
    assert.equal(m.qos, 1);
    assert.equal(m.retain, false);
    await sub.send({ type: "puback", packetId: m.packetId! });
    sub.close();
    pub.close();
  });
});

Deno.test("core reports session present only for a resumed persistent session", async () => {
  await withBroker(async (b) => {
    const c1 = new MemoryClient(b);
    assert.equal((await c1.connect("p", false)).sessionPresent, false);
    c1.close();
    await c1.waitClosed();
    const c2 = new MemoryClient(b);
    assert.equal((await c2.connect("p", false)).sessionPresent, true);
    c2.close();
    await c2.waitClosed();
    const c3 = new MemoryClient(b);
    assert.equal((await c3.connect("p", true)).sessionPresent, false);
    c3.close();
  });
});

Deno.test("core does not route a QoS 2 resend with DUP twice", async () => {
  await withBroker(async (b) => {
    const sub = new MemoryClient(b);
    await sub.connect("s2");
    await sub.send({ type: "subscribe", packetId: 1, subscriptions: [{ topic: "q2", qos: 2 }] });
    await sub.next("suback");
    const pub = new MemoryClient(b);
    await pub.connect("p2");
    const publish = {
      type: "publish" as const,
      topic: "q2",
      payload: enc.encode("once"),
      qos: 2 as const,
      retain: false,
      dup: false,
      packetId: 9,
    };
    await pub.send(publish);
    await pub.next("pubrec");
    await pub.send({ ...publish, dup: true });
    await pub.next("pubrec");
    await pub.send({ type: "pubrel", packetId: 9 });
    await pub.next("pubcomp");
    await sub.next("publish");
    // A second copy would come unannounced: only a window in which it must not can show that.
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(sub.received.filter((p) => p.type === "publish").length, 0);
    sub.close();
    pub.close();
  });
});

Deno.test("core delivers one copy at the highest QoS for overlapping subscriptions", async () => {
  await withBroker(async (b) => {
    const sub = new MemoryClient(b);
    await sub.connect("ov");
    await sub.send({
      type: "subscribe",
      packetId: 1,
      subscriptions: [{ topic: "x/+", qos: 0 }, { topic: "x/#", qos: 2 }, { topic: "#", qos: 1 }],
    });
    assert.deepEqual((await sub.next("suback")).reasonCodes, [0, 2, 1]);
    const pub = new MemoryClient(b);
    await pub.connect("ovp");
    await pub.send({
      type: "publish",
      topic: "x/y",
      payload: enc.encode("m"),
      qos: 2,
      retain: false,
      dup: false,
      packetId: 1,
    });
    const m = await sub.next("publish");
    assert.equal(m.qos, 2);
    // A second copy would come unannounced: only a window in which it must not can show that.
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(sub.received.filter((p) => p.type === "publish").length, 0);
    sub.close();
    pub.close();
  });
});

Deno.test("core closes a connection whose first packet is not CONNECT", async () => {
  await withBroker(async (b) => {
    const c = new MemoryClient(b);
    await c.send({ type: "pingreq" });
    await c.waitClosed();
  });
});

Deno.test("an unacknowledged delivery stops pinning its publisher's read chunk after a tick", async () => {
  await withBroker(async (b) => {
    const sub = new MemoryClient(b);
    await sub.connect("slow-acker");
    await sub.send({ type: "subscribe", packetId: 1, subscriptions: [{ topic: "pin/+", qos: 1 }] });
    await sub.next("suback");
    const pub = new MemoryClient(b);
    await pub.connect("pinner");
    // Two PUBLISHes in one chunk: each payload starts as a view into that chunk.
    const one = (topic: string, id: number) => ({
      type: "publish" as const,
      topic,
      payload: enc.encode(`payload-${id}`),
      qos: 1 as const,
      retain: false,
      dup: false,
      packetId: id,
    });
    const chunk = new Uint8Array(4096); // a socket chunk with room to spare
    let n = 0;
    for (const p of [one("pin/a", 1), one("pin/b", 2)]) {
      const bytes = encode(p, 4);
      chunk.set(bytes, n);
      n += bytes.length;
    }
    await pub.sendBytes(chunk.subarray(0, n));
    await pub.next("puback");
    await sub.next("publish");
    const inflight = () => [...b.sessions.get("slow-acker")!.inflight.values()];
    assert.equal(inflight().length, 2, "both deliveries wait for their PUBACK");
    // Sent at once: still views into the publisher's chunk.
    assert.ok(inflight().every((e) => e.message.payload.buffer.byteLength === 4096));
    // The once-a-second housekeeping copies them out; a payload never copied times the wait out.
    await waitFor(
      () => inflight().every((e) => e.message.payload.buffer.byteLength < 4096),
      { what: "the housekeeping tick to copy the in-flight payloads", timeout: 3_000 },
    );
    for (const e of inflight()) {
      assert.equal(e.message.payload.buffer.byteLength, e.message.payload.byteLength);
      assert.match(new TextDecoder().decode(e.message.payload), /^payload-[12]$/);
    }
    sub.close();
    pub.close();
  });
});
