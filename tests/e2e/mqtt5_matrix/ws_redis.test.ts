/**
 * The MQTT 5.0 matrix (cases.ts) over WebSocket with the Redis store: one node with cluster-on
 * against a real redis-server started for the test. While a persistent session is offline the
 * node is killed with SIGKILL and started again under the same node id, so queued messages,
 * their properties and their expiry come back from Redis.
 */
import { REDIS_IGNORE, startRedis } from "../../helpers/redis.ts";
import { type NodeProcess, spawnNode } from "../../cluster/nodes.ts";
import { freePort } from "../../transport/helpers.ts";
import { commonArgs } from "./deployment.ts";
import { runMatrix } from "./cases.ts";

runMatrix(
  "WebSocket with the Redis store, restarted while sessions are offline",
  REDIS_IGNORE,
  async () => {
    const redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "mqttwk-m5matrix-" });
    // A fixed WebSocket port: clients come back to the same one after the restart.
    const wsPort = freePort();
    const args = [
      "--mqttwk.broker.websocket-enabled=true",
      `--mqttwk.broker.websocket-port=${wsPort}`,
      ...await commonArgs(dir),
    ];
    const start = () => spawnNode("ws1", [`--redis.port=${redis.port}`], args);
    let node: NodeProcess = await start();
    return {
      deployment: {
        name: "ws+redis",
        transport: "ws",
        cluster: false,
        url: () => `ws://127.0.0.1:${wsPort}/mqtt`,
        address: () => ({ host: "127.0.0.1", port: wsPort }),
        logs: () => node.logs(),
        clientOptions: {},
        offline: async () => {
          await node.kill();
          node = await start();
        },
      },
      close: async () => {
        await node.kill();
        await redis.kill();
        await Deno.remove(dir, { recursive: true });
      },
    };
  },
);
