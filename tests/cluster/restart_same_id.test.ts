/**
 * A node killed with SIGKILL and started again at once under the same node id: its heartbeat
 * from the killed run is still in Redis, and the new run writes ($SYS, retained) before that
 * heartbeat expires. It must wait for its own epoch instead of fencing itself, and must not
 * mistake its own heartbeat for another process using its id.
 */
import assert from "node:assert/strict";
import { REDIS_IGNORE, startRedis } from "../helpers/redis.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import * as raw from "../helpers/raw.ts";
import { spawnNode } from "./nodes.ts";

Deno.test({
  name: "a node restarted at once after SIGKILL under the same id starts without fencing itself",
  ignore: REDIS_IGNORE,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const redis = await startRedis();
    const args = ["--mqttwk.broker.sys-interval=1"];
    let node = await spawnNode("same", [`--redis.port=${redis.port}`], args);
    try {
      for (let round = 0; round < 4; round++) {
        // Something stored, so a restart has writes to make.
        const c = await connectMqttJs(node.url, { clientId: `keeper-${round}`, clean: false });
        await c.subscribe(`kept/${round}`, 1);
        await c.publish(`retained/${round}`, "r", { qos: 1, retain: true });
        await c.close();
        await node.kill();
        node = await spawnNode("same", [`--redis.port=${redis.port}`], args);
        const logs = node.logs();
        assert.doesNotMatch(logs, /was fenced/, `round ${round}: fenced at start-up`);
        assert.doesNotMatch(logs, /another live process uses node id/, `round ${round}`);
        const { client, connack } = await raw.rawConnect("127.0.0.1", node.port, {
          clientId: `keeper-${round}`,
          cleanSession: false,
        });
        assert.equal(connack.sessionPresent, true, `round ${round}: session kept`);
        await client.close();
      }
    } finally {
      await node.kill();
      await redis.kill();
    }
  },
});
