/** MessageSink (at-least-once hand-off before the publisher's ack) and BrokerEvents. */
import assert from "node:assert/strict";
import type { ClientInfo, StoredMessage } from "../../src/broker/model.ts";
import type { MessageSink, SinkDone } from "../../src/broker/ports/sink.ts";
import type { Packet, Will } from "../../src/codec/packets.ts";
import {
  assertNone,
  connected,
  disconnect,
  drop,
  MemoryClient,
  publish,
  publishAcked,
  subscribe,
  text,
  waitFor,
  withBroker,
} from "./harness.ts";

/** A sink whose accept() returns a promise the test settles. */
class HeldSink implements MessageSink {
  readonly seen: { message: StoredMessage; from: ClientInfo }[] = [];
  readonly #settle: { resolve: () => void; reject: (e: Error) => void }[] = [];
  accept(message: StoredMessage, from: ClientInfo): Promise<void> {
    this.seen.push({ message, from });
    return new Promise((resolve, reject) => this.#settle.push({ resolve, reject }));
  }
  resolve(i = 0) {
    this.#settle[i].resolve();
  }
  reject(i = 0) {
    this.#settle[i].reject(new Error("sink refused"));
  }
}

Deno.test("a sink's pending promise delays the PUBACK until it resolves", async () => {
  const sink = new HeldSink();
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await pub.send(publish("s/t", "held", 1, { packetId: 6 }));
    await waitFor(() => sink.seen.length === 1, 2000, "the sink to see the message");
    // Absence tested: no PUBACK while the sink has not resolved.
    await assertNone(pub, "puback");
    sink.resolve();
    assert.equal((await pub.next("puback")).packetId, 6);
    pub.close();
  }, { sinks: [sink] });
});

Deno.test("a sink's pending promise delays the PUBREC of a QoS 2 PUBLISH", async () => {
  const sink = new HeldSink();
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await pub.send(publish("s/t", "held", 2, { packetId: 7 }));
    await waitFor(() => sink.seen.length === 1);
    await assertNone(pub, "pubrec");
    sink.resolve();
    assert.equal((await pub.next("pubrec")).packetId, 7);
    await pub.send({ type: "pubrel", packetId: 7 });
    await pub.next("pubcomp");
    pub.close();
  }, { sinks: [sink] });
});

Deno.test("a rejecting sink leaves the publish unacknowledged; the connection stays up", async () => {
  const sink = new HeldSink();
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await pub.send(publish("s/t", "refused", 1, { packetId: 8 }));
    await waitFor(() => sink.seen.length === 1);
    sink.reject();
    // Absence tested: never acknowledged.
    await assertNone(pub, "puback");
    assert.equal(pub.closed, false);
    // The client's resend is handed to the sink again and acknowledged once it is accepted.
    await pub.send(publish("s/t", "refused", 1, { packetId: 8, dup: true }));
    await waitFor(() => sink.seen.length === 2);
    sink.resolve(1);
    assert.equal((await pub.next("puback")).packetId, 8);
    pub.close();
  }, { sinks: [sink] });
});

Deno.test("a rejected QoS 2 PUBLISH gets no PUBREC, and its resend is treated as new", async () => {
  const sink = new HeldSink();
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await pub.send(publish("s/q2", "x", 2, { packetId: 9 }));
    await waitFor(() => sink.seen.length === 1);
    sink.reject();
    await assertNone(pub, "pubrec");
    await pub.send(publish("s/q2", "x", 2, { packetId: 9, dup: true }));
    await waitFor(() => sink.seen.length === 2, 2000, "the resend to reach the sink again");
    sink.resolve(1);
    assert.equal((await pub.next("pubrec")).packetId, 9);
    pub.close();
  }, { sinks: [sink] });
});

Deno.test("the PUBACK waits for every sink", async () => {
  const s1 = new HeldSink();
  const s2 = new HeldSink();
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await pub.send(publish("s/two", "x", 1, { packetId: 3 }));
    await waitFor(() => s1.seen.length === 1 && s2.seen.length === 1);
    s1.resolve();
    await assertNone(pub, "puback");
    s2.resolve();
    assert.equal((await pub.next("puback")).packetId, 3);
    pub.close();
  }, { sinks: [s1, s2] });
});

Deno.test("subscribers get the message without waiting for the sink", async () => {
  const sink = new HeldSink();
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["s/route", 1]]);
    const pub = await connected(b, "pub");
    await pub.send(publish("s/route", "now", 1));
    assert.equal(text(await sub.next("publish")), "now");
    assert.deepEqual(pub.pending("puback"), []);
    sink.resolve();
    await pub.next("puback");
    sub.close();
    pub.close();
  }, { sinks: [sink] });
});

Deno.test("a sink sees each accepted message with its publisher; not unauthorized ones", async () => {
  const seen: string[] = [];
  const sink: MessageSink = {
    accept: (m, from) => {
      seen.push(`${from.clientId}:${m.topic}:${text(m)}:q${m.qos}:r${m.retain}`);
    },
  };
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await publishAcked(pub, "in/a", "0", 0);
    await publishAcked(pub, "in/b", "1", 1, { retain: true });
    await publishAcked(pub, "denied/c", "x", 1);
    await publishAcked(pub, "in/d", "2", 2);
    assert.deepEqual(seen, ["pub:in/a:0:q0:rfalse", "pub:in/b:1:q1:rtrue", "pub:in/d:2:q2:rfalse"]);
    pub.close();
  }, {
    sinks: [sink],
    authorizer: { canPublish: (_c, t) => !t.startsWith("denied/"), canSubscribe: () => true },
  });
});

Deno.test("a will is handed to the sinks as a message of its client", async () => {
  const seen: string[] = [];
  await withBroker(async (b) => {
    const will: Will = {
      topic: "wills/x",
      payload: new TextEncoder().encode("bye"),
      qos: 1,
      retain: false,
    };
    const c = await connected(b, "mortal", { extra: { will } as Partial<Packet> });
    await drop(c);
    assert.deepEqual(seen, ["mortal:wills/x:bye"]);
  }, {
    sinks: [{ accept: (m, from) => void seen.push(`${from.clientId}:${m.topic}:${text(m)}`) }],
  });
});

Deno.test("events fire for connect, subscribe, unsubscribe and disconnect, in order", async () => {
  const events: string[] = [];
  await withBroker(async (b) => {
    const c = await connected(b, "ev", { extra: { username: "u" } as Partial<Packet> });
    await subscribe(c, [["e/a", 1], ["e/b", 0]]);
    await c.send({ type: "unsubscribe", packetId: 2, topics: ["e/a"] });
    await c.next("unsuback");
    await disconnect(c);
    assert.deepEqual(events, [
      "connected ev u v4",
      "subscribed ev e/a 1",
      "subscribed ev e/b 0",
      "unsubscribed ev e/a",
      "disconnected ev",
    ]);
  }, {
    events: {
      clientConnected: (i) =>
        events.push(`connected ${i.clientId} ${i.username} v${i.protocolVersion}`),
      clientDisconnected: (i) => events.push(`disconnected ${i.clientId}`),
      subscribed: (i, f, q) => events.push(`subscribed ${i.clientId} ${f} ${q}`),
      unsubscribed: (i, f) => events.push(`unsubscribed ${i.clientId} ${f}`),
    },
  });
});

Deno.test("no connected or disconnected event fires for a refused connection", async () => {
  const events: string[] = [];
  await withBroker(async (b) => {
    const c = new MemoryClient(b);
    assert.equal((await c.connect("nope")).reasonCode, 5);
    await c.waitClosed();
    assert.deepEqual(events, []);
  }, {
    authenticator: { authenticate: () => ({ ok: false, reasonCode: 5 }) },
    events: {
      clientConnected: (i) => events.push(`connected ${i.clientId}`),
      clientDisconnected: (i) => events.push(`disconnected ${i.clientId}`),
    },
  });
});

Deno.test("a 3.1 client is reported with protocol level 3", async () => {
  const levels: number[] = [];
  await withBroker(async (b) => {
    const c = await connected(b, "old", { version: 3 });
    c.close();
  }, { events: { clientConnected: (i) => levels.push(i.protocolVersion) } });
  assert.deepEqual(levels, [3]);
});

/** A sink with the callback form (as the Kafka bridge has): the test calls its `done`s. */
class CallbackSink implements MessageSink {
  readonly seen: StoredMessage[] = [];
  readonly dones: SinkDone[] = [];
  accepts = 0;
  accept(message: StoredMessage): void {
    // For what has no ack to hold (QoS 0); the callback form covers a client's QoS 1/2.
    this.accepts++;
    this.seen.push(message);
  }
  acceptThen(message: StoredMessage, _from: ClientInfo, done: SinkDone): boolean {
    this.seen.push(message);
    if (message.qos === 0) return false;
    this.dones.push(done);
    return true;
  }
}

Deno.test("a sink's callback form holds the PUBACK / PUBREC until it calls done", async () => {
  const sink = new CallbackSink();
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await pub.send(publish("s/t", "one", 1, { packetId: 6 }));
    await pub.send(publish("s/t", "two", 2, { packetId: 7 }));
    await pub.send(publish("s/t", "zero", 0));
    await waitFor(() => sink.seen.length === 3, 2000, "the sink to see the messages");
    assert.equal(sink.dones.length, 2);
    // QoS 0 has no ack to hold: the plain form.
    assert.equal(sink.accepts, 1);
    await assertNone(pub, "puback");
    sink.dones[1].sinkDone();
    assert.equal((await pub.next("pubrec")).packetId, 7);
    sink.dones[0].sinkDone();
    assert.equal((await pub.next("puback")).packetId, 6);
    // Told twice, it acknowledges once.
    sink.dones[0].sinkDone();
    await assertNone(pub, "puback");
    await pub.send({ type: "pubrel", packetId: 7 });
    await pub.next("pubcomp");
    pub.close();
  }, { sinks: [sink] });
});

Deno.test("a sink's callback form refusing leaves the publish unacknowledged; a resend goes again", async () => {
  const sink = new CallbackSink();
  await withBroker(async (b) => {
    const pub = await connected(b, "pub");
    await pub.send(publish("s/t", "refused", 2, { packetId: 9 }));
    await waitFor(() => sink.dones.length === 1);
    sink.dones[0].sinkDone(new Error("sink refused"));
    await assertNone(pub, "pubrec");
    assert.equal(pub.closed, false);
    // The QoS 2 packet id was freed: the resend is routed again, not taken for a duplicate.
    await pub.send(publish("s/t", "refused", 2, { packetId: 9, dup: true }));
    await waitFor(() => sink.dones.length === 2);
    sink.dones[1].sinkDone();
    assert.equal((await pub.next("pubrec")).packetId, 9);
    pub.close();
  }, { sinks: [sink] });
});
