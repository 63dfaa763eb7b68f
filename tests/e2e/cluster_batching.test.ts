/**
 * Cross-node forwarding in batches (src/cluster/outbox.ts): two broker processes over one real
 * redis-server, mqtt.js 5.0 publishers firing bursts on node 1 without waiting, a subscriber on
 * node 2. Every message arrives once, in each publisher's order, with its properties, and what
 * crossed Redis took far fewer XADDs and PUBLISHes than messages.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { REDIS_IGNORE, startRedis } from "../helpers/redis.ts";
import { scoped } from "../helpers/broker.ts";
import { awaitRoute, spawnNode } from "../cluster/nodes.ts";

const opts = { ignore: REDIS_IGNORE, sanitizeOps: false, sanitizeResources: false };

/** Calls of `cmd` since the server started, from INFO commandstats. */
async function calls(cli: (...a: string[]) => Promise<string>, cmd: string): Promise<number> {
  const m = (await cli("info", "commandstats")).match(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`));
  return Number(m?.[1] ?? 0);
}

Deno.test({
  ...opts,
  name:
    "cluster: bursts from three publishers cross nodes in batches, each publisher's messages once, in order, with their properties",
  fn: () =>
    scoped(async (defer) => {
      const redis = await startRedis();
      defer(() => redis.kill());
      const args = [`--redis.port=${redis.port}`];
      const [n1, n2] = await Promise.all([spawnNode("b1", args), spawnNode("b2", args)]);
      defer(() => n1.kill());
      defer(() => n2.kill());
      const v5 = { protocolVersion: 5 as const };
      const sub = await connectMqttJs(n2.url, { ...v5, clientId: "batch-sub" });
      defer(() => sub.close());
      const got: { topic: string; seq: number; qos: number; props: Record<string, unknown> }[] = [];
      sub.client.on("message", (topic, payload, packet) => {
        if (!topic.startsWith("batch/p")) return;
        got.push({
          topic,
          seq: Number(Buffer.from(payload).toString()),
          qos: packet.qos,
          props: (packet.properties ?? {}) as Record<string, unknown>,
        });
      });
      await sub.subscribe("batch/#", 2);
      const pubs = await Promise.all(
        [0, 1, 2].map((i) => connectMqttJs(n1.url, { ...v5, clientId: `batch-pub-${i}` })),
      );
      for (const p of pubs) defer(() => p.close());
      await awaitRoute(pubs[0], sub, "batch/probe");

      const xadd0 = await calls(redis.cli, "xadd");
      const publish0 = await calls(redis.cli, "publish");
      const N = 300;
      // Publisher i publishes at QoS i: QoS 0 over the node's channel, 1 and 2 over its stream.
      const sent = pubs.flatMap((p, i) =>
        Array.from({ length: N }, (_, seq) =>
          p.client.publishAsync(`batch/p${i}`, String(seq), {
            qos: i as 0 | 1 | 2,
            properties: {
              userProperties: { seq: String(seq), who: `p${i}` },
              contentType: "text/plain",
              messageExpiryInterval: 600,
              ...(seq % 2 ? { correlationData: Buffer.from([seq & 0xff, 7]) } : {}),
            },
          }))
      );
      await Promise.all(sent);
      // Not "batch/p*": the route probes on batch/probe would count, and the wait could end
      // before the last QoS 2 message came.
      await sub.inbox.waitForCount(3 * N, (m) => /^batch\/p\d$/.test(m.topic), 20_000);
      await sub.sync();

      for (let i = 0; i < 3; i++) {
        const mine = got.filter((m) => m.topic === `batch/p${i}`);
        assert.deepEqual(
          mine.map((m) => m.seq),
          Array.from({ length: N }, (_, k) => k),
          `publisher ${i} (QoS ${i}): every message once, in order`,
        );
        for (const m of mine) {
          assert.equal(m.qos, i);
          assert.deepEqual({ ...(m.props.userProperties as object) }, {
            seq: String(m.seq),
            who: `p${i}`,
          });
          assert.equal(m.props.contentType, "text/plain");
          assert.ok((m.props.messageExpiryInterval as number) <= 600);
          if (m.seq % 2) {
            assert.deepEqual([...(m.props.correlationData as Uint8Array)], [m.seq & 0xff, 7]);
          } else assert.equal(m.props.correlationData, undefined);
        }
      }
      // 600 QoS 1/2 and 300 QoS 0 messages crossed; far fewer commands did.
      const xadds = (await calls(redis.cli, "xadd")) - xadd0;
      const publishes = (await calls(redis.cli, "publish")) - publish0;
      assert.ok(xadds > 0 && xadds < N, `${xadds} XADDs for ${2 * N} QoS 1/2 messages`);
      assert.ok(publishes < N, `${publishes} PUBLISHes for ${N} QoS 0 messages (and routes)`);
      // The stream was acknowledged and emptied behind the deliveries.
      const key = `mqttwk:stream:{b2}`;
      await sub.sync();
      for (let i = 0; i < 100 && (await redis.cli("xlen", key)).trim() !== "0"; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal((await redis.cli("xlen", key)).trim(), "0");
    }),
});
