/** PINGREQ / PINGRESP and the keep-alive timeout. */
import assert from "node:assert/strict";
import type { Packet, Will } from "../../src/codec/packets.ts";
import { connected, publish, subscribe, text, withBroker } from "./harness.ts";

Deno.test("PINGREQ is answered with PINGRESP [MQTT-3.12.4-1]", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "ping");
    for (let i = 0; i < 3; i++) {
      await c.send({ type: "pingreq" });
      await c.next("pingresp");
    }
    c.close();
  });
});

Deno.test("a client silent for 1.5 x its keep-alive is disconnected [MQTT-3.1.2-24]", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "silent", { extra: { keepalive: 1 } as Partial<Packet> });
    const t0 = Date.now();
    await c.waitClosed(4000);
    const waited = Date.now() - t0;
    assert.ok(waited >= 1400, `closed after ${waited} ms, before 1.5 x keep-alive`);
  });
});

Deno.test("PINGREQs within the keep-alive keep the connection open", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "pinger", { extra: { keepalive: 1 } as Partial<Packet> });
    const until = Date.now() + 2500;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 400)); // the client's own keep-alive rhythm
      await c.send({ type: "pingreq" });
      await c.next("pingresp");
    }
    assert.equal(c.closed, false);
    c.close();
  });
});

Deno.test("any packet from the client, not only PINGREQ, resets the keep-alive timer", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "talker", { extra: { keepalive: 1 } as Partial<Packet> });
    const until = Date.now() + 2500;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 400));
      await c.send(publish("talk", "x"));
    }
    assert.equal(c.closed, false);
    c.close();
  });
});

Deno.test("the broker's own output does not count as activity of the client", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "listener", { extra: { keepalive: 1 } as Partial<Packet> });
    await subscribe(c, [["feed", 0]]);
    const pub = await connected(b, "pub");
    let stop = false;
    const feeding = (async () => {
      while (!stop) {
        await pub.send(publish("feed", "tick"));
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    await c.waitClosed(4000);
    stop = true;
    await feeding;
    pub.close();
  });
});

Deno.test("keep-alive 0 turns the timeout off", async () => {
  await withBroker(async (b) => {
    const c = await connected(b, "forever", { extra: { keepalive: 0 } as Partial<Packet> });
    // Absence tested: longer than 1.5 x the smallest non-zero keep-alive.
    await new Promise((r) => setTimeout(r, 1700));
    assert.equal(c.closed, false);
    await c.send({ type: "pingreq" });
    await c.next("pingresp");
    c.close();
  });
});

Deno.test("a keep-alive timeout publishes the will", async () => {
  await withBroker(async (b) => {
    const watcher = await connected(b, "watcher");
    await subscribe(watcher, [["ka/will", 0]]);
    const will: Will = {
      topic: "ka/will",
      payload: new TextEncoder().encode("timed out"),
      qos: 0,
      retain: false,
    };
    const c = await connected(b, "ka", { extra: { keepalive: 1, will } as Partial<Packet> });
    await c.waitClosed(4000);
    assert.equal(text(await watcher.next("publish")), "timed out");
    watcher.close();
  });
});
