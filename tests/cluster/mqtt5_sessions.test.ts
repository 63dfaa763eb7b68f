/**
 * MQTT 5.0 sessions moving between two cluster nodes (in-process, over a real Redis): a delayed
 * will waiting on node A when its client starts clean on node B, and the subscription options and
 * identifiers of a session resumed on the other node.
 */
import assert from "node:assert/strict";
import type { Subscription } from "../../src/codec/packets.ts";
import { MemoryClient } from "../broker/memory_pipe.ts";
import { connected5 } from "../broker/mqtt5_harness.ts";
import { HAVE_REDIS, REDIS_IGNORE, startRedis } from "../helpers/redis.ts";
import { eventually, receive, twoNodes } from "./harness.ts";

const redis = HAVE_REDIS ? await startRedis() : null;
const enc = new TextEncoder();
const dec = new TextDecoder();

let pid = 0;
async function subscribe5(c: MemoryClient, subs: Subscription[], id?: number): Promise<void> {
  await c.send({
    type: "subscribe",
    packetId: ++pid,
    subscriptions: subs,
    properties: id === undefined ? undefined : { subscriptionIdentifiers: [id] },
  });
  const ack = await c.next("suback");
  assert.deepEqual(ack.reasonCodes, subs.map((s) => s.qos));
}

async function publish1(c: MemoryClient, topic: string, payload: string, retain = false) {
  await c.send({
    type: "publish",
    topic,
    payload: enc.encode(payload),
    qos: 1,
    retain,
    dup: false,
    packetId: ++pid,
  });
  await c.next("puback");
}

const opts = { ignore: REDIS_IGNORE, sanitizeOps: false, sanitizeResources: false };

Deno.test({
  ...opts,
  name:
    "cluster: a delayed will waiting on node A is published when its client starts clean on node B, which ends the session [MQTT-3.1.3-9] [MQTT-3.1.2-4]",
  fn: () =>
    twoNodes(redis?.port, "m5sess", async (a, b) => {
      const { c: watcher } = await connected5(b.broker, "watcher");
      await subscribe5(watcher, [{ topic: "will/#", qos: 1 }]);
      await eventually(() => a.link.routesFor("will/w").includes("n2"), 5000, "route on n1");
      const { c: w } = await connected5(a.broker, "w", { sessionExpiryInterval: 600 }, {
        will: {
          topic: "will/w",
          payload: enc.encode("gone"),
          qos: 1,
          retain: false,
          properties: { willDelayInterval: 300, userProperties: [["k", "v"]] },
        },
      });
      await subscribe5(w, [{ topic: "old/sub", qos: 1 }]);
      w.close(); // no DISCONNECT: the will waits for its delay on n1
      await w.waitClosed();
      await eventually(
        async () => (await a.store.loadSession("w"))?.session.willDueAt !== undefined,
        5000,
        "will waiting on n1",
      );
      const { c: back, ack } = await connected5(b.broker, "w", undefined, { clean: true });
      assert.equal(ack.sessionPresent, false);
      const m = await receive(watcher);
      assert.equal(m.topic, "will/w");
      assert.equal(dec.decode(m.payload), "gone");
      assert.deepEqual(m.properties?.userProperties, [["k", "v"]]);
      // The old session ended: its record, will and subscription are gone from the shared store.
      assert.equal(await b.store.loadSession("w"), null);
      back.close();
      watcher.close();
    }),
});

Deno.test({
  ...opts,
  name:
    "cluster: a delayed will is not published when its client resumes the session on the other node in time [MQTT-3.1.3-9]",
  fn: () =>
    twoNodes(redis?.port, "m5sess", async (a, b) => {
      const { c: watcher } = await connected5(b.broker, "watcher");
      await subscribe5(watcher, [{ topic: "will/#", qos: 1 }]);
      await eventually(() => a.link.routesFor("will/w").includes("n2"), 5000, "route on n1");
      const persistent = { sessionExpiryInterval: 600 };
      const { c: w } = await connected5(a.broker, "w", persistent, {
        will: {
          topic: "will/w",
          payload: enc.encode("gone"),
          qos: 1,
          retain: false,
          properties: { willDelayInterval: 300 },
        },
      });
      w.close();
      await w.waitClosed();
      await eventually(
        async () => (await a.store.loadSession("w"))?.session.willDueAt !== undefined,
        5000,
        "will waiting on n1",
      );
      const { c: back, ack } = await connected5(b.broker, "w", persistent, { clean: false });
      assert.equal(ack.sessionPresent, true);
      assert.equal((await b.store.loadSession("w"))?.session.will, undefined);
      await new Promise((r) => setTimeout(r, 150)); // absence: the will must not arrive
      assert.deepEqual(watcher.pending("publish"), []);
      back.close();
      watcher.close();
    }),
});

Deno.test({
  ...opts,
  name:
    "cluster: a session resumed on the other node keeps No Local, Retain As Published and its Subscription Identifier [MQTT-3.8.3-3] [MQTT-3.3.1-12] [MQTT-3.3.4-3]",
  fn: () =>
    twoNodes(redis?.port, "m5sess", async (a, b) => {
      const persistent = { sessionExpiryInterval: 600 };
      const { c: s } = await connected5(a.broker, "mover", persistent);
      await subscribe5(s, [{ topic: "o/#", qos: 1, noLocal: true, retainAsPublished: true }], 7);
      await subscribe5(s, [{ topic: "o/plain", qos: 1 }], 9);
      s.close();
      await s.waitClosed();
      const { c: back, ack } = await connected5(b.broker, "mover", persistent, { clean: false });
      assert.equal(ack.sessionPresent, true);
      assert.equal(a.broker.sessions.has("mover"), false);
      // No Local: its own message on o/x does not come back to it on n2.
      await publish1(back, "o/x", "own");
      const other = new MemoryClient(a.broker);
      await other.connect("other");
      await eventually(() => a.link.routesFor("o/plain").includes("n2"), 5000, "route on n1");
      await publish1(other, "o/x", "retained", true);
      const m = await receive(back);
      assert.equal(dec.decode(m.payload), "retained");
      assert.equal(m.retain, true, "Retain As Published kept on n2");
      assert.deepEqual(m.properties?.subscriptionIdentifiers, [7]);
      await publish1(other, "o/plain", "both");
      const both = await receive(back);
      assert.equal(dec.decode(both.payload), "both");
      assert.equal(both.retain, false);
      assert.deepEqual(both.properties?.subscriptionIdentifiers?.toSorted(), [7, 9]);
      back.close();
      other.close();
    }),
});
