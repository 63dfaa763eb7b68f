/**
 * Malformed packets and protocol violations from a client: the broker closes the connection
 * [MQTT-4.8.0-1], processes nothing of the offending packet, and keeps serving everyone else.
 * The bytes are written by hand: the codec's encoder would not produce them.
 */
import assert from "node:assert/strict";
import { connected, MemoryClient, subscribe, text, withBroker } from "./harness.ts";
import type { Broker } from "../../src/broker/broker.ts";

const utf8 = (s: string) => [...new TextEncoder().encode(s)];
const str = (s: string) => {
  const b = utf8(s);
  return [b.length >> 8, b.length & 0xff, ...b];
};

/** A raw CONNECT (3.1.1) with the given connect flags and payload bytes. */
function rawConnect(flags: number, payload: number[]): Uint8Array {
  const body = [...str("MQTT"), 4, flags, 0, 0, ...payload];
  return new Uint8Array([0x10, body.length, ...body]);
}

/**
 * Connects a client, a watcher subscribed to everything, sends `bytes` and expects the
 * connection to be closed with nothing routed and nothing answered; the watcher still works.
 */
async function expectClosedAfter(b: Broker, bytes: number[], answered: string[] = []) {
  const watcher = await connected(b, "watcher");
  await subscribe(watcher, [["#", 0]]);
  const c = await connected(b, "offender");
  await c.sendBytes(new Uint8Array(bytes));
  await c.waitClosed();
  assert.deepEqual(c.received.map((p) => p.type), answered, "no answer to the bad packet");
  assert.equal(b.stats.connections, 1, "only the watcher is left");
  // The broker still serves others, and nothing of the bad packet was routed.
  const other = await connected(b, "other");
  await other.send({
    type: "publish",
    topic: "still/alive",
    payload: new Uint8Array([1]),
    qos: 0,
    retain: false,
    dup: false,
  });
  const m = await watcher.next("publish");
  assert.equal(m.topic, "still/alive", "the bad packet was not routed");
  watcher.close();
  other.close();
}

Deno.test("a PUBLISH topic with '+' closes the connection [MQTT-3.3.2-2]", async () => {
  await withBroker((b) => expectClosedAfter(b, [0x30, 6, ...str("a/+"), 0x78]));
});

Deno.test("a PUBLISH topic with '#' closes the connection [MQTT-3.3.2-2]", async () => {
  await withBroker((b) => expectClosedAfter(b, [0x32, 8, ...str("a/#"), 0, 1, 0x78]));
});

Deno.test("a PUBLISH with an empty topic closes the connection [MQTT-4.7.3-1]", async () => {
  await withBroker((b) => expectClosedAfter(b, [0x30, 3, 0, 0, 0x78]));
});

Deno.test("a PUBLISH with QoS 3 closes the connection [MQTT-3.3.1-4]", async () => {
  await withBroker((b) => expectClosedAfter(b, [0x36, 5, ...str("t"), 0, 1]));
});

Deno.test("a QoS 0 PUBLISH with DUP set closes the connection [MQTT-3.3.1-2]", async () => {
  await withBroker((b) => expectClosedAfter(b, [0x38, 4, ...str("t"), 0x78]));
});

Deno.test("a QoS 1 PUBLISH with packet id 0 closes the connection [MQTT-2.3.1-1]", async () => {
  await withBroker((b) => expectClosedAfter(b, [0x32, 6, ...str("t"), 0, 0, 0x78]));
});

Deno.test("a topic that is not valid UTF-8 closes the connection [MQTT-1.5.3-1]", async () => {
  await withBroker((b) => expectClosedAfter(b, [0x30, 5, 0, 2, 0xc3, 0x28, 0x78]));
});

Deno.test("a topic containing U+0000 closes the connection [MQTT-1.5.3-2]", async () => {
  await withBroker((b) => expectClosedAfter(b, [0x30, 6, 0, 3, 0x61, 0x00, 0x62, 0x78]));
});

Deno.test("a SUBSCRIBE with fixed header flags other than 0x2 closes the connection [MQTT-3.8.1-1]", async () => {
  await withBroker((b) => expectClosedAfter(b, [0x80, 6, 0, 1, ...str("a"), 0]));
});

Deno.test("a SUBSCRIBE without topic filters closes the connection [MQTT-3.8.3-3]", async () => {
  await withBroker((b) => expectClosedAfter(b, [0x82, 2, 0, 1]));
});

Deno.test("a SUBSCRIBE requesting QoS 3 closes the connection [MQTT-3.8.3-4]", async () => {
  await withBroker((b) => expectClosedAfter(b, [0x82, 6, 0, 1, ...str("a"), 3]));
});

Deno.test("a SUBSCRIBE with reserved option bits set closes the connection [MQTT-3.8.3-4]", async () => {
  await withBroker((b) => expectClosedAfter(b, [0x82, 6, 0, 1, ...str("a"), 0x41]));
});

Deno.test("a SUBSCRIBE with packet id 0 closes the connection [MQTT-2.3.1-1]", async () => {
  await withBroker((b) => expectClosedAfter(b, [0x82, 6, 0, 0, ...str("a"), 0]));
});

Deno.test("an UNSUBSCRIBE with fixed header flags other than 0x2 closes the connection [MQTT-3.10.1-1]", async () => {
  await withBroker((b) => expectClosedAfter(b, [0xa0, 5, 0, 1, ...str("a")]));
});

Deno.test("an UNSUBSCRIBE without topic filters closes the connection [MQTT-3.10.3-2]", async () => {
  await withBroker((b) => expectClosedAfter(b, [0xa2, 2, 0, 1]));
});

Deno.test("a PUBREL with fixed header flags other than 0x2 closes the connection [MQTT-3.6.1-1]", async () => {
  await withBroker((b) => expectClosedAfter(b, [0x60, 2, 0, 1]));
});

Deno.test("a PINGREQ with flags set closes the connection [MQTT-2.2.2-2]", async () => {
  await withBroker((b) => expectClosedAfter(b, [0xc1, 0]));
});

Deno.test("a CONNACK sent by a client closes the connection", async () => {
  await withBroker((b) => expectClosedAfter(b, [0x20, 2, 0, 0]));
});

Deno.test("a SUBACK sent by a client closes the connection", async () => {
  await withBroker((b) => expectClosedAfter(b, [0x90, 3, 0, 1, 0]));
});

Deno.test("a PINGRESP sent by a client closes the connection", async () => {
  await withBroker((b) => expectClosedAfter(b, [0xd0, 0]));
});

Deno.test("packet type 0 (reserved) closes the connection", async () => {
  await withBroker((b) => expectClosedAfter(b, [0x00, 0]));
});

Deno.test("packet type 15 (reserved in 3.1.1) closes the connection", async () => {
  await withBroker((b) => expectClosedAfter(b, [0xf0, 0]));
});

Deno.test("a remaining length longer than four bytes closes the connection", async () => {
  await withBroker((b) => expectClosedAfter(b, [0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]));
});

Deno.test("a PUBACK with a wrong remaining length closes the connection", async () => {
  await withBroker((b) => expectClosedAfter(b, [0x40, 3, 0, 1, 0]));
});

Deno.test("a good packet in the same chunk before a bad one is still processed", async () => {
  await withBroker(async (b) => {
    const watcher = await connected(b, "watcher");
    await subscribe(watcher, [["#", 0]]);
    const c = await connected(b, "half");
    await c.sendBytes(
      new Uint8Array([0x30, 6, ...str("ok"), 0x79, 0x73, 0x30, 6, ...str("a/+"), 0x78]),
    );
    await c.waitClosed();
    const m = await watcher.next("publish");
    assert.equal(m.topic, "ok");
    assert.equal(text(m), "ys");
    watcher.close();
  });
});

Deno.test("a truncated packet followed by end of stream just closes the connection", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "cut");
    await c.sendBytes(new Uint8Array([0x30, 20, 0, 5, 0x61]));
    c.close();
    await c.waitClosed();
    assert.equal(b.stats.connections, 0);
    assert.equal(b.stats.messagesIn, 0);
  });
});

// --- CONNECT itself ------------------------------------------------------------------------

async function expectConnectClosed(bytes: Uint8Array) {
  await withBroker(async (b) => {
    const c = new MemoryClient(b);
    await c.sendBytes(bytes);
    await c.waitClosed();
    assert.deepEqual(c.received, [], "no CONNACK");
    assert.equal(b.stats.sessions, 0);
  });
}

Deno.test("a CONNECT with the reserved flag set closes the connection [MQTT-3.1.2-3]", async () => {
  await expectConnectClosed(rawConnect(0x03, str("x")));
});

Deno.test("a CONNECT with will QoS 3 closes the connection [MQTT-3.1.2-14]", async () => {
  await expectConnectClosed(rawConnect(0x1e, [...str("x"), ...str("w"), 0, 0]));
});

Deno.test("a CONNECT with will QoS but no will flag closes the connection [MQTT-3.1.2-13]", async () => {
  await expectConnectClosed(rawConnect(0x0a, str("x")));
});

Deno.test("a CONNECT with will retain but no will flag closes the connection [MQTT-3.1.2-15]", async () => {
  await expectConnectClosed(rawConnect(0x22, str("x")));
});

Deno.test("a CONNECT with a password but no user name closes the connection [MQTT-3.1.2-22]", async () => {
  await expectConnectClosed(rawConnect(0x42, [...str("x"), 0, 1, 0x70]));
});

Deno.test("a CONNECT with an empty will topic closes the connection [MQTT-4.7.3-1]", async () => {
  await expectConnectClosed(rawConnect(0x06, [...str("x"), 0, 0, 0, 0]));
});

Deno.test("a CONNECT with bytes left after its payload closes the connection", async () => {
  const ok = rawConnect(0x02, str("x"));
  const bytes = new Uint8Array([0x10, ok[1] + 1, ...ok.subarray(2), 0x00]);
  await expectConnectClosed(bytes);
});
