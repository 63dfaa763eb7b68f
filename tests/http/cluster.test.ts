/**
 * The HTTP API of a two-node cluster (two in-process apps on one real redis-server): whichever
 * node serves a call answers for both. A client on node B is listed and kicked through node A,
 * /info counts every session once, and a publish through A reaches subscribers on A and on B.
 */
import assert from "node:assert/strict";
import { scoped, uid } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { REDIS_IGNORE, startRedis, testPrefix } from "../helpers/redis.ts";
import { call, type HttpApp, startHttpApp } from "./helpers.ts";

const opts = { ignore: REDIS_IGNORE, sanitizeOps: false, sanitizeResources: false };

async function clusterNode(redisPort: number, prefix: string, id: string): Promise<HttpApp> {
  return await startHttpApp([
    "--mqttwk.http.api-keys-file=/nonexistent/api-keys",
    "--mqttwk.broker.cluster-on=true",
    "--redis.host=127.0.0.1",
    `--redis.port=${redisPort}`,
    `--redis.key-prefix=${prefix}`,
    `--node-id=${id}`,
    "--mqttwk.broker.cluster.node-timeout=2",
  ]);
}

/** Polls `check` until it is true (cluster state travels through Redis asynchronously). */
async function until(check: () => Promise<boolean>, what: string, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test({
  name: "a two-node cluster answers every admin call for both nodes, whichever serves it",
  ...opts,
  async fn() {
    const redis = await startRedis();
    await scoped(async (defer) => {
      defer(() => redis.stop());
      const prefix = testPrefix("http");
      const a = await clusterNode(redis.port, prefix, "node-a");
      defer(() => a.app.stop());
      const b = await clusterNode(redis.port, prefix, "node-b");
      defer(() => b.app.stop());

      // Both nodes show up in the status of either.
      await until(async () => {
        const st = await call(a.base, "/api/v1/status");
        return st.body.cluster.nodes.length === 2;
      }, "node A to see node B");
      const st = await call(b.base, "/api/v1/status");
      assert.equal(st.body.cluster.enabled, true);
      assert.deepEqual(st.body.cluster.nodes.map((n: { id: string }) => n.id).sort(), [
        "node-a",
        "node-b",
      ]);
      assert.equal(st.body.store.kind, "redis");

      const onA = await connectMqttJs(a.url, { clientId: uid("on-a") });
      defer(() => onA.close());
      const idB = uid("on-b");
      const onB = await connectMqttJs(b.url, { clientId: idB, clean: false });
      defer(() => onB.close());
      await onA.subscribe("cluster/api/#", 1);
      await onB.subscribe("cluster/api/#", 1);

      // B's client, seen from A.
      const list = await call(a.base, "/api/v1/clients");
      assert.equal(list.body.total, 2);
      const fromA = await call(a.base, `/api/v1/clients/${encodeURIComponent(idB)}`);
      assert.equal(fromA.status, 200);
      assert.equal(fromA.body.node, "node-b");
      assert.equal(fromA.body.subscriptions[0].filter, "cluster/api/#");
      assert.equal((await call(a.base, "/api/v1/status")).body.stats.connections, 2);

      // /info: each session once, across the cluster.
      const info = await call(a.base, "/open/api/mqttwk/info");
      assert.equal(info.body.data.total, 2);
      assert.equal(
        new Set(info.body.data.list.map((x: { clientId: string }) => x.clientId)).size,
        2,
      );

      // A publish through A (new API and original API) reaches subscribers on A and on B.
      const sent = await call(a.base, "/api/v1/publish", {
        method: "POST",
        body: JSON.stringify({ topic: "cluster/api/1", payload: "both", qos: 1 }),
      });
      assert.deepEqual(sent.body, { ok: true });
      await onA.inbox.waitFor((m) => m.topic === "cluster/api/1" && m.payload === "both");
      await onB.inbox.waitFor((m) => m.topic === "cluster/api/1" && m.payload === "both");
      const legacy = await call(a.base, "/open/api/mqttwk/send", {
        method: "POST",
        body: JSON.stringify({ topic: "cluster/api/2", message: "原来", qos: 1 }),
      });
      assert.deepEqual(legacy.body, { code: 0, msg: "success" });
      await onA.inbox.waitFor((m) => m.topic === "cluster/api/2" && m.payload === "原来");
      await onB.inbox.waitFor((m) => m.topic === "cluster/api/2" && m.payload === "原来");

      // Kicked through A, disconnected on B; its persistent session stays, offline, on B.
      const closed = new Promise<void>((resolve) => onB.client.once("close", () => resolve()));
      const kick = await call(a.base, `/api/v1/clients/${encodeURIComponent(idB)}`, {
        method: "DELETE",
      });
      assert.deepEqual(kick.body, { disconnected: true });
      await closed;
      await until(async () => {
        const s = await call(a.base, `/api/v1/sessions?prefix=${encodeURIComponent(idB)}`);
        return s.body.total === 1 && s.body.items[0].connected === false;
      }, "the kicked client's session to show offline");
      const del = await call(a.base, `/api/v1/sessions/${encodeURIComponent(idB)}`, {
        method: "DELETE",
      });
      assert.deepEqual(del.body, { deleted: true });
      const after = await call(b.base, `/api/v1/sessions?prefix=${encodeURIComponent(idB)}`);
      assert.equal(after.body.total, 0);

      // A node that is registered and has a heartbeat but does not answer: listed unhealthy
      // once the gathering gives up on it, and the others still answer.
      await redis.cli("SADD", `${prefix}{g}:nodes`, "ghost");
      await redis.cli("SET", `${prefix}{g}:alive:ghost`, "token", "PX", "60000");
      const withGhost = await call(a.base, "/api/v1/status");
      const ghost = withGhost.body.cluster.nodes.find((n: { id: string }) => n.id === "ghost");
      assert.deepEqual(ghost, { id: "ghost", healthy: false, connections: 0, uptimeSeconds: 0 });
      assert.equal(withGhost.body.cluster.nodes.length, 3);
      await a.log.waitFor(/no answer from ghost within 2000 ms/);
    });
  },
});
