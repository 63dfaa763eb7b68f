/**
 * Server-sent DISCONNECT for quotas and rates (4.13.2): a connection publishing faster than
 * `max-publish-rate` gets 0x96 Message rate too high (a 3.1.1 one is simply closed), and a 5.0
 * slow consumer cut off after `slow-consumer-timeout` gets 0x97 Quota exceeded.
 */
import assert from "node:assert/strict";
import type { Broker } from "../../src/broker/broker.ts";
import type { RawIo, RawSink } from "../../src/broker/ports/connection.ts";
import { Decoder } from "../../src/codec/decoder.ts";
import { encode } from "../../src/codec/encoder.ts";
import type { Packet, QoS } from "../../src/codec/packets.ts";
import { ReasonCode } from "../../src/codec/reason_codes.ts";
import { waitFor } from "../helpers/wait.ts";
import { connected, MemoryClient, withBroker, withClock } from "./harness.ts";
import { connect5, connected5, expectDisconnect } from "./mqtt5_harness.ts";

const enc = new TextEncoder();
let pid = 0;

function publish(c: MemoryClient, topic: string, qos: QoS = 0): Promise<void> {
  return c.send({
    type: "publish",
    topic,
    payload: enc.encode("m"),
    qos,
    retain: false,
    dup: false,
    packetId: qos ? ++pid : undefined,
  });
}

const rate = { options: { maxPublishRate: 2, maxPublishBurst: 3 } };

Deno.test("a 5.0 client publishing faster than max-publish-rate gets DISCONNECT 0x96 and its will is published; what it sent within the rate was delivered [4.13.2] [MQTT-3.14.2-1]", async () => {
  await withBroker(async (b) => {
    const { c: watcher } = await connected5(b, "watcher");
    await watcher.send({ type: "subscribe", packetId: 1, subscriptions: [{ topic: "#", qos: 0 }] });
    await watcher.next("suback");
    const { c } = await connected5(b, "fast", undefined, {
      will: { topic: "will/fast", payload: enc.encode("gone"), qos: 0, retain: false },
    });
    // The burst of 3 passes, the 4th in the same instant is one too many.
    for (let i = 0; i < 4; i++) await publish(c, `t/${i}`);
    await expectDisconnect(c, ReasonCode.MessageRateTooHigh);
    const topics = [];
    for (let i = 0; i < 4; i++) topics.push((await watcher.next("publish")).topic);
    assert.deepEqual(topics.toSorted(), ["t/0", "t/1", "t/2", "will/fast"]);
    watcher.close();
  }, rate);
});

Deno.test("publishing at max-publish-rate is allowed: the bucket refills with time", async () => {
  await withClock(async (advance) => {
    await withBroker(async (b) => {
      const { c } = await connected5(b, "steady");
      for (let second = 0; second < 5; second++) {
        await publish(c, "t", 1);
        await publish(c, "t", 1);
        await c.next("puback");
        await c.next("puback");
        advance(1000);
      }
      assert.equal(c.closed, false);
      assert.deepEqual(c.pending("disconnect"), []);
      c.close();
    }, rate);
  });
});

Deno.test("a 3.1.1 client publishing faster than max-publish-rate is closed without a DISCONNECT; an unacknowledged QoS 1 PUBLISH is not routed", async () => {
  await withBroker(async (b) => {
    const watcher = await connected(b, "watcher");
    await watcher.send({
      type: "subscribe",
      packetId: 1,
      subscriptions: [{ topic: "t/#", qos: 1 }],
    });
    await watcher.next("suback");
    const c = await connected(b, "fast311");
    for (let i = 0; i < 4; i++) await c.trySend(pubPacket(`t/${i}`));
    await c.waitClosed();
    const acks = c.pending("puback").length;
    assert.equal(acks, 3);
    assert.deepEqual(c.pending("disconnect"), []);
    const got = [];
    for (let i = 0; i < 3; i++) got.push((await watcher.next("publish")).topic);
    assert.deepEqual(got.toSorted(), ["t/0", "t/1", "t/2"]);
    await new Promise((r) => setTimeout(r, 50)); // absence: t/3 was refused, not routed
    assert.deepEqual(watcher.pending("publish"), []);
    watcher.close();
  }, rate);
});

function pubPacket(topic: string): Packet {
  return {
    type: "publish",
    topic,
    payload: enc.encode("m"),
    qos: 1,
    retain: false,
    dup: false,
    packetId: ++pid,
  };
}

Deno.test("without max-publish-rate (0, the default) a burst of PUBLISHes is never cut off", async () => {
  await withBroker(async (b) => {
    const { c } = await connected5(b, "burst");
    for (let i = 0; i < 500; i++) await publish(c, "t");
    await c.send({ type: "pingreq" });
    await c.next("pingresp");
    assert.equal(c.closed, false);
    c.close();
  });
});

/** A connection whose peer stops reading when told: writes then stay pending. */
class StallingConnection {
  readonly written: Uint8Array[] = [];
  closed = false;
  stalled = false;
  #sink: RawSink | null = null;
  readonly #never = new Promise<void>(() => {});
  readonly raw: RawIo = {
    start: (sink) => void (this.#sink = sink),
    pause: () => {},
    resume: () => {},
    write: (bytes) => {
      this.written.push(bytes.slice());
      return this.stalled ? this.#never : undefined;
    },
  };
  readonly readable = new ReadableStream<Uint8Array>();
  readonly writable = new WritableStream<Uint8Array>();
  readonly remoteAddress = "memory:2";
  readonly transport = "memory";

  constructor(b: Broker) {
    b.handleConnection(this);
  }

  send(p: Packet): void {
    this.#sink!.onData(encode(p, 5));
  }

  close(): void {
    this.closed = true;
  }

  /** Every packet written so far. */
  packets(): Packet[] {
    const out: Packet[] = [];
    const d = new Decoder({ protocolVersion: 5 });
    for (const w of this.written) d.push(w, (p) => out.push(p));
    return out;
  }
}

Deno.test("a 5.0 slow consumer cut off after slow-consumer-timeout gets DISCONNECT 0x97 Quota exceeded [4.13.2]", async () => {
  await withBroker(async (b) => {
    const slow = new StallingConnection(b);
    await waitFor(() => true, { what: "start" });
    slow.send(connect5("slow"));
    await waitFor(() => slow.packets().some((p) => p.type === "connack"), { what: "CONNACK" });
    slow.send({ type: "subscribe", packetId: 1, subscriptions: [{ topic: "s", qos: 0 }] });
    await waitFor(() => slow.packets().some((p) => p.type === "suback"), { what: "SUBACK" });
    slow.stalled = true;
    const { c: pub } = await connected5(b, "pub");
    for (let i = 0; i < 20; i++) await publish(pub, "s");
    const d = await waitFor(
      () => slow.packets().find((p) => p.type === "disconnect"),
      { what: "DISCONNECT to the slow consumer", timeout: 5000 },
    );
    assert.equal(d.type === "disconnect" && d.reasonCode, ReasonCode.QuotaExceeded);
    await waitFor(() => slow.closed, { what: "the close" });
    pub.close();
  }, { options: { outboundBufferBytes: 16, slowConsumerTimeout: 0 } });
});
