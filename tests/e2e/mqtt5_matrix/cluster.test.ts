/**
 * The MQTT 5.0 matrix (cases.ts) across a two-node cluster over TCP with a real redis-server:
 * publishers on node n1, subscribers on node n2, so every message is forwarded between nodes; a
 * persistent session left on n2 resumes on n1 (its queued messages and their properties move
 * with it); shared groups and wills span both nodes.
 */
import { REDIS_IGNORE, startRedis } from "../../helpers/redis.ts";
import { spawnNode } from "../../cluster/nodes.ts";
import { commonArgs } from "./deployment.ts";
import { runMatrix } from "./cases.ts";

runMatrix("a two-node cluster (TCP, Redis)", REDIS_IGNORE, async () => {
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-m5matrix-" });
  const args = await commonArgs(dir);
  const nodes = await Promise.all(
    ["n1", "n2"].map((id) => spawnNode(id, [`--redis.port=${redis.port}`], args)),
  );
  return {
    deployment: {
      name: "cluster",
      transport: "tcp",
      cluster: true,
      url: (n) => nodes[n].url,
      address: (n) => ({ host: "127.0.0.1", port: nodes[n].port }),
      logs: () => nodes.map((n) => n.logs()).join("\n"),
      clientOptions: {},
      offline: () => Promise.resolve(),
    },
    close: async () => {
      for (const n of nodes) await n.kill();
      await redis.kill();
      await Deno.remove(dir, { recursive: true });
    },
  };
});
