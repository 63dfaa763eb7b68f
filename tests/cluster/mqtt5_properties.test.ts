/**
 * MQTT 5.0 message properties across the cluster: a message published on node A reaches a 5.0
 * subscriber on node B with every property, a 3.1.1 subscriber there without them, and a
 * message that waited carries its remaining expiry (or, expired, is not delivered).
 */
import assert from "node:assert/strict";
import type { Properties, QoS } from "../../src/codec/packets.ts";
import { MemoryClient } from "../broker/memory_pipe.ts";
import { connected5 } from "../broker/mqtt5_harness.ts";
import { HAVE_REDIS, REDIS_IGNORE, startRedis } from "../helpers/redis.ts";
import { eventually, receive, twoNodes } from "./harness.ts";

const redis = HAVE_REDIS ? await startRedis() : null;
const enc = new TextEncoder();
const dec = new TextDecoder();

const PROPS: Properties = {
  payloadFormatIndicator: 1,
  messageExpiryInterval: 300,
  contentType: "application/json",
  responseTopic: "reply/to/me",
  correlationData: new Uint8Array([0xde, 0xad, 0, 0xbe, 0xef]),
  userProperties: [["trace", "1"], ["hop", "a"], ["trace", "1"], ["ü", "😀"]],
};

let pid = 0;
async function sub(c: MemoryClient, topic: string, qos: QoS): Promise<void> {
  await c.send({ type: "subscribe", packetId: ++pid, subscriptions: [{ topic, qos }] });
  await c.next("suback");
}

async function pub(c: MemoryClient, topic: string, payload: string, qos: QoS, props: Properties) {
  const packetId = qos ? ++pid : undefined;
  await c.send({
    type: "publish",
    topic,
    payload: enc.encode(payload),
    qos,
    retain: false,
    dup: false,
    packetId,
    properties: props,
  });
  if (qos === 1) await c.next("puback");
  if (qos === 2) {
    await c.next("pubrec");
    await c.send({ type: "pubrel", packetId: packetId! });
    await c.next("pubcomp");
  }
}

const opts = { ignore: REDIS_IGNORE, sanitizeOps: false, sanitizeResources: false };

Deno.test({
  ...opts,
  name:
    "cluster: every property of a message from node A reaches a 5.0 subscriber on node B unchanged; a 3.1.1 one gets none [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20]",
  fn: () =>
    twoNodes(redis?.port, "m5props", async (a, b) => {
      const { c: s5 } = await connected5(b.broker, "s5");
      await sub(s5, "x/#", 2);
      const s4 = new MemoryClient(b.broker);
      await s4.connect("s4");
      await sub(s4, "x/#", 2);
      await eventually(() => a.link.routesFor("x/1").includes("n2"), 5000, "route on n1");
      const { c: p } = await connected5(a.broker, "p");
      for (const qos of [0, 1, 2] as const) {
        await pub(p, "x/1", `{"q":${qos}}`, qos, PROPS);
        const m = await receive(s5);
        assert.equal(dec.decode(m.payload), `{"q":${qos}}`);
        assert.deepEqual(m.properties, PROPS);
        const m4 = await receive(s4);
        assert.equal(dec.decode(m4.payload), `{"q":${qos}}`);
        assert.equal(m4.properties, undefined);
      }
      s5.close();
      s4.close();
      p.close();
    }),
});

Deno.test({
  ...opts,
  name:
    "cluster: a message from node A queued for an offline session on node B arrives with the remaining expiry; an expired one does not arrive [MQTT-3.3.2-5] [MQTT-3.3.2-6]",
  fn: async () => {
    const realNow = Date.now;
    let offset = 0;
    // Expiry is measured with Date.now; node liveness with Redis key TTLs, which this leaves alone.
    Date.now = () => realNow() + offset;
    try {
      await twoNodes(redis?.port, "m5props", async (a, b) => {
        const persistent = { sessionExpiryInterval: 600 };
        const { c: s } = await connected5(b.broker, "offline", persistent);
        await sub(s, "q/#", 1);
        await eventually(() => a.link.routesFor("q/1").includes("n2"), 5000, "route on n1");
        s.close();
        await s.waitClosed();
        const { c: p } = await connected5(a.broker, "p");
        await pub(p, "q/1", "short", 1, { messageExpiryInterval: 2 });
        await pub(p, "q/1", "long", 1, PROPS);
        await eventually(
          () => (b.broker.sessions.get("offline")?.queueLength ?? 0) === 2,
          5000,
          "both messages queued on n2",
        );
        offset += 10_400;
        const { c: back } = await connected5(b.broker, "offline", persistent, { clean: false });
        const m = await receive(back);
        assert.equal(dec.decode(m.payload), "long");
        // 300 s minus the 10.4 s it waited, rounded up.
        assert.deepEqual(m.properties, { ...PROPS, messageExpiryInterval: 290 });
        await new Promise((r) => setTimeout(r, 100)); // absence: "short" must not follow
        assert.deepEqual(back.pending("publish"), []);
        back.close();
        p.close();
      });
    } finally {
      Date.now = realNow;
    }
  },
});

Deno.test({
  ...opts,
  name: "cluster: a retained message set on node A keeps its properties for a subscriber on node B",
  fn: () =>
    twoNodes(redis?.port, "m5props", async (a, b) => {
      const { c: p } = await connected5(a.broker, "p");
      await p.send({
        type: "publish",
        topic: "r/1",
        payload: enc.encode("kept"),
        qos: 1,
        retain: true,
        dup: false,
        packetId: 5,
        properties: PROPS,
      });
      await p.next("puback");
      await eventually(() => b.broker.retained.get("r/1") !== null, 5000, "retained on n2");
      const { c: s } = await connected5(b.broker, "s");
      await sub(s, "r/#", 1);
      const m = await receive(s);
      assert.equal(m.retain, true);
      assert.deepEqual(m.properties, PROPS);
      s.close();
      p.close();
    }),
});
