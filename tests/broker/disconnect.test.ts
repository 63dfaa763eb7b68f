/** DISCONNECT and the other ways a connection ends. */
import assert from "node:assert/strict";
import { encode } from "../../src/codec/encoder.ts";
import type { Packet, Will } from "../../src/codec/packets.ts";
import {
  assertNone,
  connected,
  disconnect,
  drop,
  makeBroker,
  MemoryClient,
  publish,
  subscribe,
  text,
  withBroker,
} from "./harness.ts";

Deno.test("DISCONNECT makes the broker close the connection and end a clean session", async () => {
  const reasons: string[] = [];
  await withBroker(async (b) => {
    const c = await connected(b, "bye");
    await subscribe(c, [["bye/t", 0]]);
    await disconnect(c);
    assert.equal(b.stats.connections, 0);
    assert.equal(b.stats.sessions, 0);
    assert.equal(b.stats.subscriptions, 0);
    assert.equal(reasons.length, 1);
  }, { events: { clientDisconnected: (_i, why) => reasons.push(why) } });
});

Deno.test("DISCONNECT keeps a persistent session", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "stay", { clean: false });
    await subscribe(c, [["stay/t", 1]]);
    await disconnect(c);
    assert.equal(b.stats.sessions, 1);
    assert.equal(b.stats.subscriptions, 1);
    const back = new MemoryClient(b);
    assert.equal((await back.connect("stay", false)).sessionPresent, true);
    back.close();
  });
});

Deno.test("packets after DISCONNECT in the same chunk are not processed", async () => {
  await withBroker(async (b) => {
    const watcher = await connected(b, "watcher");
    await subscribe(watcher, [["after/#", 0]]);
    const c = await connected(b, "sloppy");
    const bytes = [
      ...encode({ type: "disconnect" }, 4),
      ...encode(publish("after/x", "must not route"), 4),
    ];
    await c.sendBytes(new Uint8Array(bytes));
    await c.waitClosed();
    // Absence tested.
    await assertNone(watcher, "publish");
    watcher.close();
  });
});

Deno.test("a DISCONNECT with reserved flags set is a protocol error: closed, will published [MQTT-2.2.2-2]", async () => {
  await withBroker(async (b) => {
    const watcher = await connected(b, "watcher");
    await subscribe(watcher, [["dw", 0]]);
    const will: Will = {
      topic: "dw",
      payload: new TextEncoder().encode("w"),
      qos: 0,
      retain: false,
    };
    const c = await connected(b, "flags", { extra: { will } as Partial<Packet> });
    await c.sendBytes(new Uint8Array([0xe1, 0x00]));
    await c.waitClosed();
    assert.equal(text(await watcher.next("publish")), "w");
    watcher.close();
  });
});

Deno.test("a connection closed by the client without DISCONNECT is reported disconnected", async () => {
  const events: string[] = [];
  await withBroker(async (b) => {
    const c = await connected(b, "eof");
    await drop(c);
    assert.equal(b.stats.connections, 0);
    assert.deepEqual(events, ["connected eof", "disconnected eof"]);
  }, {
    events: {
      clientConnected: (i) => events.push(`connected ${i.clientId}`),
      clientDisconnected: (i) => events.push(`disconnected ${i.clientId}`),
    },
  });
});

// Current behaviour, documented: a shutdown ends connections without publishing their wills
// (the will of a persistent session is kept in its session record).
Deno.test("closing the broker closes every connection without publishing wills", async () => {
  const b = makeBroker();
  await b.start();
  const c1 = await connected(b, "c1");
  const will: Will = { topic: "shut", payload: new Uint8Array([1]), qos: 0, retain: true };
  const c2 = await connected(b, "c2", { extra: { will } as Partial<Packet> });
  await b.close();
  await c1.waitClosed();
  await c2.waitClosed();
  assert.equal(b.stats.connections, 0);
  assert.equal(b.stats.retained, 0, "the will was not published");
});

Deno.test("a connection arriving while the broker shuts down is refused", async () => {
  const b = makeBroker();
  await b.start();
  const closing = b.close();
  const c = new MemoryClient(b);
  await c.trySend({
    type: "connect",
    protocolName: "MQTT",
    protocolVersion: 4,
    clean: true,
    keepalive: 0,
    clientId: "late",
  });
  await c.waitClosed(4000);
  // Closed at once or refused with 0x03: never accepted.
  for (const p of c.pending("connack")) assert.equal((p as { reasonCode: number }).reasonCode, 3);
  await closing;
});
