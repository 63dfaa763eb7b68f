/**
 * `$SYS` in a cluster: two real nodes (subprocesses) on a real redis-server, publishing every
 * second. `$SYS/broker/...` carries the cluster's totals, the same on both nodes and equal to
 * the sum of the per-node `$SYS/nodes/<id>/...` figures; only one node publishes them (no
 * duplicates); a node that stops leaves the totals and its per-node topics are cleared.
 */
import assert from "node:assert/strict";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { REDIS_IGNORE, startRedis } from "../helpers/redis.ts";
import { scoped, uid } from "../helpers/broker.ts";
import { waitFor } from "../helpers/wait.ts";
import { spawnNode } from "../cluster/nodes.ts";

type Watcher = Awaited<ReturnType<typeof connectMqttJs>>;

/** The latest value `w` received on `topic`, as a number (NaN when none yet). */
function latest(w: Watcher, topic: string): number {
  const all = w.inbox.on(topic);
  return all.length === 0 ? NaN : Number(all[all.length - 1].payload);
}

Deno.test({
  name:
    "two cluster nodes: $SYS/broker totals equal the sum of $SYS/nodes/<id> on both nodes, published once",
  ignore: REDIS_IGNORE,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    scoped(async (defer) => {
      const r = await startRedis();
      defer(() => r.kill());
      const args = [`--redis.port=${r.port}`, "--mqttwk.broker.sys-interval=1"];
      const [n1, n2] = await Promise.all(["n1", "n2"].map((id) => spawnNode(id, args)));
      defer(() => n1.kill());
      defer(() => n2.kill());
      const watch = async (url: string) => {
        const w = await connectMqttJs(url, { clientId: uid("sys-watch") });
        defer(w.close);
        await w.subscribe("$SYS/#", 0);
        return w;
      };
      const w1 = await watch(n1.url);
      const w2 = await watch(n2.url);
      // Extra clients: 1 + 2 on n1, 1 + 1 on n2 (the watchers included).
      for (const url of [n1.url, n1.url, n2.url]) {
        const c = await connectMqttJs(url, { clientId: uid("sys-extra") });
        defer(c.close);
        await c.subscribe(`extra/${uid("f")}`, 1);
      }

      const total = (w: Watcher, t: string) => latest(w, `$SYS/broker/${t}`);
      const node = (w: Watcher, id: string, t: string) => latest(w, `$SYS/nodes/${id}/${t}`);
      for (const [name, w] of [["n1", w1], ["n2", w2]] as const) {
        await waitFor(
          () =>
            total(w, "clients/connected") === 5 &&
            node(w, "n1", "clients/connected") === 3 &&
            node(w, "n2", "clients/connected") === 2 &&
            total(w, "subscriptions/count") === 5,
          {
            what: `cluster totals on ${name}`,
            timeout: 15_000,
            detail: () =>
              `connected total ${total(w, "clients/connected")}, n1 ${
                node(w, "n1", "clients/connected")
              }, n2 ${node(w, "n2", "clients/connected")}, subscriptions ${
                total(w, "subscriptions/count")
              }`,
          },
        );
      }
      // Every per-node topic is there for both nodes, seen from either node.
      for (const w of [w1, w2]) {
        for (const id of ["n1", "n2"]) {
          for (const t of ["version", "uptime", "bytes/received", "load/messages/sent/1min"]) {
            // Another node's retained values reach this node's index asynchronously (announced
            // over Redis): wait for them rather than expect them with the totals.
            await waitFor(() => w.inbox.on(`$SYS/nodes/${id}/${t}`).length > 0, {
              what: `$SYS/nodes/${id}/${t}`,
              timeout: 10_000,
            });
          }
        }
      }
      // One publisher of the totals: the live uptime updates never repeat or go back.
      await w2.inbox.waitForCount(3, (m) => m.topic === "$SYS/broker/uptime" && !m.retain, 10_000);
      for (const w of [w1, w2]) {
        const ups = w.inbox.on("$SYS/broker/uptime").filter((m) => !m.retain)
          .map((m) => Number(m.payload.split(" ")[0]));
        assert.deepEqual(ups, [...ups].sort((a, b) => a - b), `uptimes ${ups}`);
        assert.equal(new Set(ups).size, ups.length, `uptimes ${ups}`);
      }
      const bytesN1 = node(w1, "n1", "bytes/received");
      const bytesN2 = node(w1, "n2", "bytes/received");
      console.log(
        `cluster: connected ${total(w1, "clients/connected")} (n1 ${
          node(w1, "n1", "clients/connected")
        } + n2 ${node(w1, "n2", "clients/connected")}); bytes/received total ` +
          `${total(w1, "bytes/received")} (n1 ${bytesN1}, n2 ${bytesN2}); seen the same on n2: ` +
          `${total(w2, "clients/connected")}`,
      );

      // n2 goes: the totals are n1's alone, and n2's retained per-node topics are cleared.
      await n2.stop();
      await waitFor(
        () =>
          total(w1, "clients/connected") === 3 &&
          w1.inbox.on("$SYS/nodes/n2/uptime").at(-1)?.payload === "",
        {
          what: "totals without n2, and n2's topics cleared",
          timeout: 20_000,
          detail: () => `connected total ${total(w1, "clients/connected")}`,
        },
      );
      const late = await connectMqttJs(n1.url, { clientId: uid("sys-late") });
      defer(late.close);
      await late.subscribe("$SYS/#", 0);
      await late.sync();
      const n2Topics = late.inbox.messages.filter((m) => m.topic.startsWith("$SYS/nodes/n2/"));
      assert.deepEqual(n2Topics.map((m) => m.topic), [], "no retained topic of n2 is left");
      assert.ok(late.inbox.on("$SYS/nodes/n1/uptime").length === 1);
      assert.ok(late.inbox.on("$SYS/broker/clients/connected").length === 1);
    }),
});
