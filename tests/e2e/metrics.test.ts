/** The read-only /metrics and /health endpoint, including degraded health when Redis is lost. */
import assert from "node:assert/strict";
import { EXTERNAL, scoped, startBroker, uid } from "../helpers/broker.ts";
import { REDIS_IGNORE, startRedis } from "../helpers/redis.ts";
import * as raw from "../helpers/raw.ts";
import { waitFor } from "../helpers/wait.ts";

const HTTP = /listening http (\S+):(\d+)/;

async function endpoint(logs: () => string, wait: (re: RegExp) => Promise<string>) {
  await wait(HTTP);
  const m = logs().match(HTTP)!;
  return `http://${m[1]}:${m[2]}`;
}

Deno.test({
  name: "/metrics counts connections and messages and /health answers ok",
  ignore: EXTERNAL,
  async fn() {
    const broker = await startBroker({
      args: ["--mqttwk.broker.http-enabled=true", "--server.port=0"],
    });
    try {
      const base = await endpoint(broker.logs, (re) => broker.waitForLog(re));
      await scoped(async (defer) => {
        const { client } = await raw.rawConnect(broker.host, broker.port, { clientId: uid("m") });
        defer(client.close);
        await client.write(raw.publish({ topic: uid("m"), payload: "x", qos: 1, packetId: 1 }));
        await client.expect(raw.PacketType.PUBACK);
        const text = await (await fetch(`${base}/metrics`)).text();
        assert.match(text, /^mqttwk_connections 1$/m);
        assert.match(text, /^mqttwk_messages_received_total 1$/m);
        assert.match(text, /# TYPE mqttwk_messages_sent_total counter/);
        const health = await fetch(`${base}/health`);
        assert.equal(health.status, 200);
        assert.equal((await health.json()).status, "ok");
        const post = await fetch(`${base}/metrics`, { method: "POST" });
        await post.body?.cancel();
        assert.equal(post.status, 405, "read-only");
      });
    } finally {
      assert.equal(await broker.stop(), 0, broker.logs());
    }
  },
});

Deno.test({
  name: "/health reports the cluster degraded while Redis is down, and ok again after",
  ignore: EXTERNAL || REDIS_IGNORE,
  async fn() {
    const redis = await startRedis();
    const broker = await startBroker({
      args: [
        "--mqttwk.broker.http-enabled=true",
        "--server.port=0",
        "--mqttwk.broker.cluster-on=true",
        `--redis.port=${redis.port}`,
        `--node-id=${uid("n")}`,
      ],
    });
    try {
      const base = await endpoint(broker.logs, (re) => broker.waitForLog(re));
      let last = "";
      const status = async () => {
        const r = await fetch(`${base}/health`);
        const body = await r.json();
        last = `${r.status} ${JSON.stringify(body)}`;
        return { code: r.status, body: body as { degraded?: string[] } };
      };
      assert.equal((await status()).code, 200);
      await redis.kill();
      const degraded = await waitFor(async () => {
        const s = await status();
        return s.code === 503 && s;
      }, {
        what: "/health to answer 503 once Redis is gone",
        timeout: 10_000,
        interval: 100,
        detail: () => `last answer: ${last}`,
      });
      assert.equal(degraded.code, 503);
      assert.deepEqual(degraded.body.degraded, ["cluster"]);
      assert.match(await (await fetch(`${base}/metrics`)).text(), /^mqttwk_cluster_healthy 0$/m);
      await redis.start();
      const back = await waitFor(async () => {
        const s = await status();
        return s.code === 200 && s.code;
      }, {
        what: "/health to answer 200 again once Redis is back",
        timeout: 10_000,
        interval: 100,
        detail: () => `last answer: ${last}`,
      });
      assert.equal(back, 200);
    } finally {
      await broker.stop();
      await redis.kill();
    }
  },
});
