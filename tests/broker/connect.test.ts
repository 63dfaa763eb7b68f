/** CONNECT / CONNACK flows of MQTT 3.1 (MQIsdp, level 3) and 3.1.1 (MQTT, level 4). */
import assert from "node:assert/strict";
import { encode } from "../../src/codec/encoder.ts";
import type { ConnectPacket, Packet } from "../../src/codec/packets.ts";
import {
  assertNone,
  connected,
  MemoryClient,
  publish,
  subscribe,
  text,
  withBroker,
} from "./harness.ts";

function connectPacket(over: Partial<ConnectPacket> = {}): ConnectPacket {
  return {
    type: "connect",
    protocolName: "MQTT",
    protocolVersion: 4,
    clean: true,
    keepalive: 0,
    clientId: "c",
    ...over,
  };
}

Deno.test("an MQTT 3.1.1 CONNECT is accepted with CONNACK 0 [MQTT-3.1.4-4]", async () => {
  await withBroker(async (b) => {
    const c = new MemoryClient(b, 4);
    const ack = await c.connect("v311");
    assert.equal(ack.reasonCode, 0);
    assert.equal(ack.sessionPresent, false, "clean session: session present 0 [MQTT-3.2.2-1]");
    assert.equal(b.stats.connections, 1);
    assert.equal(b.stats.sessions, 1);
    c.close();
  });
});

Deno.test("an MQTT 3.1 (MQIsdp, level 3) CONNECT is accepted and the client can pub/sub", async () => {
  await withBroker(async (b) => {
    const c = new MemoryClient(b, 3);
    assert.equal((await c.connect("v31")).reasonCode, 0);
    assert.deepEqual(await subscribe(c, [["v31/t", 1]]), [1]);
    await c.send(publish("v31/t", "old", 1, { packetId: 5 }));
    assert.equal((await c.next("puback")).packetId, 5);
    const m = await c.next("publish");
    assert.equal(text(m), "old");
    assert.equal(m.qos, 1);
    c.close();
  });
});

Deno.test("a 3.1 client and a 3.1.1 client exchange messages", async () => {
  await withBroker(async (b) => {
    const old = await connected(b, "old", { version: 3 });
    const cur = await connected(b, "cur", { version: 4 });
    await subscribe(old, [["mix/#", 0]]);
    await cur.send(publish("mix/a", "to-3.1"));
    assert.equal(text(await old.next("publish")), "to-3.1");
    old.close();
    cur.close();
  });
});

Deno.test("an unknown protocol level is refused with CONNACK 0x01 and closed [MQTT-3.1.2-2]", async () => {
  await withBroker(async (b) => {
    const c = new MemoryClient(b);
    await c.send(connectPacket({ protocolVersion: 6 as 4 }));
    const ack = await c.next("connack");
    assert.equal(ack.reasonCode, 0x01);
    assert.equal(ack.sessionPresent, false, "refused: session present 0 [MQTT-3.2.2-4]");
    await c.waitClosed(); // [MQTT-3.2.2-5]
  });
});

Deno.test("protocol name MQTT with level 3 is refused with CONNACK 0x01", async () => {
  await withBroker(async (b) => {
    const c = new MemoryClient(b);
    await c.send(connectPacket({ protocolName: "MQTT", protocolVersion: 3 }));
    assert.equal((await c.next("connack")).reasonCode, 0x01);
    await c.waitClosed();
  });
});

Deno.test("protocol name MQIsdp with level 4 is refused with CONNACK 0x01", async () => {
  await withBroker(async (b) => {
    const c = new MemoryClient(b);
    await c.send(connectPacket({ protocolName: "MQIsdp", protocolVersion: 4 }));
    assert.equal((await c.next("connack")).reasonCode, 0x01);
    await c.waitClosed();
  });
});

Deno.test("an unknown protocol name is refused with CONNACK 0x01 and closed", async () => {
  await withBroker(async (b) => {
    const c = new MemoryClient(b);
    await c.send(connectPacket({ protocolName: "MQTX" }));
    assert.equal((await c.next("connack")).reasonCode, 0x01);
    await c.waitClosed();
    assert.equal(b.stats.sessions, 0);
  });
});

Deno.test("an MQTT 5 CONNECT is accepted with CONNACK 0 (details in mqtt5_connect.test.ts)", async () => {
  await withBroker(async (b) => {
    const c = new MemoryClient(b, 5);
    await c.send(connectPacket({ protocolVersion: 5, clientId: "five" }));
    const ack = await c.next("connack");
    assert.equal(ack.reasonCode, 0);
    assert.equal(ack.sessionPresent, false);
    assert.equal(b.stats.sessions, 1);
    c.close();
  });
});

Deno.test("MQTT 3.1 refuses an empty client id with CONNACK 0x02", async () => {
  await withBroker(async (b) => {
    const c = new MemoryClient(b, 3);
    const ack = await c.connect("", true);
    assert.equal(ack.reasonCode, 0x02);
    await c.waitClosed();
  });
});

Deno.test("MQTT 3.1.1 refuses an empty client id with clean session 0: CONNACK 0x02 [MQTT-3.1.3-8]", async () => {
  await withBroker(async (b) => {
    const c = new MemoryClient(b, 4);
    const ack = await c.connect("", false);
    assert.equal(ack.reasonCode, 0x02);
    assert.equal(ack.sessionPresent, false);
    await c.waitClosed();
    assert.equal(b.stats.sessions, 0);
  });
});

Deno.test("MQTT 3.1.1 assigns a unique id to an empty client id with clean session 1 [MQTT-3.1.3-6]", async () => {
  const ids: string[] = [];
  await withBroker(async (b) => {
    const c1 = new MemoryClient(b, 4);
    assert.equal((await c1.connect("", true)).reasonCode, 0);
    const c2 = new MemoryClient(b, 4);
    assert.equal((await c2.connect("", true)).reasonCode, 0);
    // Two sessions: the second did not take the first over.
    assert.equal(b.stats.sessions, 2);
    assert.equal(c1.closed, false);
    assert.deepEqual(ids.length, 2);
    c1.close();
    c2.close();
  }, {
    events: { clientConnected: (info) => ids.push(info.clientId) },
  });
  assert.equal(ids.length, 2);
  assert.ok(ids.every((id) => id.length > 0));
  assert.notEqual(ids[0], ids[1]);
});

Deno.test("a connection that sends no CONNECT within the connect timeout is closed", async () => {
  await withBroker(async (b) => {
    const c = new MemoryClient(b);
    const t0 = Date.now();
    await c.waitClosed(3000);
    assert.ok(Date.now() - t0 >= 900, "not closed before the timeout");
    assert.deepEqual(c.received, [], "no CONNACK");
    assert.equal(b.stats.connections, 0);
  }, { options: { connectTimeout: 1 } });
});

Deno.test("a connection that sent CONNECT is not closed by the connect timeout", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "in-time");
    // Absence tested: the 1 s connect timeout passes without closing the connection.
    await assertNone(c, "connack", 1300);
    assert.equal(c.closed, false);
    await c.send({ type: "pingreq" });
    await c.next("pingresp");
    c.close();
  }, { options: { connectTimeout: 1 } });
});

Deno.test("a second CONNECT closes the connection [MQTT-3.1.0-2]", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "twice");
    await c.send(connectPacket({ clientId: "twice" }));
    await c.waitClosed();
    assert.deepEqual(c.pending("connack"), [], "no second CONNACK");
  });
});

Deno.test("a packet before CONNECT closes the connection without a CONNACK [MQTT-3.1.0-1]", async () => {
  await withBroker(async (b) => {
    const c = new MemoryClient(b);
    await c.send(publish("early", "x", 1, { packetId: 3 }));
    await c.waitClosed();
    assert.deepEqual(c.received, []);
    assert.equal(b.stats.messagesIn, 0);
  });
});

Deno.test("a SUBSCRIBE before CONNECT closes the connection and subscribes nothing", async () => {
  await withBroker(async (b) => {
    const c = new MemoryClient(b);
    await c.send({ type: "subscribe", packetId: 1, subscriptions: [{ topic: "x", qos: 0 }] });
    await c.waitClosed();
    assert.deepEqual(c.received, []);
    assert.equal(b.stats.subscriptions, 0);
  });
});

Deno.test("packets pipelined behind CONNECT in one chunk are handled in order after CONNACK", async () => {
  await withBroker(async (b) => {
    const c = new MemoryClient(b);
    const packets: Packet[] = [
      connectPacket({ clientId: "pipelined" }),
      { type: "subscribe", packetId: 1, subscriptions: [{ topic: "pipe", qos: 1 }] },
      publish("pipe", "first", 1, { packetId: 2 }),
      publish("pipe", "second", 0),
      { type: "pingreq" },
    ];
    const parts = packets.map((p) => encode(p, 4));
    const chunk = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      chunk.set(p, at);
      at += p.length;
    }
    await c.sendBytes(chunk);
    await c.next("pingresp");
    const types = c.received.map((p) => p.type);
    // CONNACK first, then the answers in the order the packets were sent (the delivery of a
    // client's own QoS 1 message may precede its PUBACK).
    assert.equal(types[0], "connack");
    assert.equal(types[1], "suback");
    assert.deepEqual(types.slice(2).sort(), ["puback", "publish", "publish"]);
    const pubs = c.received.filter((p) => p.type === "publish");
    assert.deepEqual(pubs.map((p) => text(p as { payload: Uint8Array })), ["first", "second"]);
    c.close();
  });
});

Deno.test("a refused CONNECT's pipelined packets are not processed [MQTT-3.1.4-5]", async () => {
  await withBroker(async (b) => {
    const watcher = await connected(b, "watcher");
    await subscribe(watcher, [["refused/#", 0]]);
    const c = new MemoryClient(b);
    const parts = [
      encode(connectPacket({ protocolVersion: 9 as 4, clientId: "bad" }), 4),
      encode(publish("refused/x", "must not route"), 4),
    ];
    await c.sendBytes(new Uint8Array([...parts[0], ...parts[1]]));
    assert.equal((await c.next("connack")).reasonCode, 0x01);
    await c.waitClosed();
    await assertNone(watcher, "publish");
    watcher.close();
  });
});

Deno.test("a CONNECT split across many one-byte chunks is accepted", async () => {
  await withBroker(async (b) => {
    const c = new MemoryClient(b);
    const bytes = encode(connectPacket({ clientId: "bytewise" }), 4);
    for (const byte of bytes) await c.sendBytes(new Uint8Array([byte]));
    assert.equal((await c.next("connack")).reasonCode, 0);
    c.close();
  });
});
