/**
 * Chaos, cluster: the cluster's Redis (appendonly yes, appendfsync always) killed with SIGKILL
 * and restarted under load, with persistent publishers and subscribers on several nodes. Nodes
 * keep serving, acknowledgements wait for Redis; nothing acknowledged may be lost.
 */
import assert from "node:assert/strict";
import { REDIS_IGNORE } from "../helpers/redis.ts";
import { scoped, sleep } from "../helpers/broker.ts";
import { ClusterChecker } from "./cluster_checker.ts";
import { ChaosPublisher, ChaosSubscriber, LONG, startChaosCluster } from "./cluster_driver.ts";

const opts = { ignore: REDIS_IGNORE, sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "chaos: Redis killed and restarted with appendonly under load loses nothing acknowledged",
  opts,
  () =>
    scoped(async (defer) => {
      const cluster = await startChaosCluster(3);
      defer(() => cluster.stop());
      const [n1, n2, n3] = cluster.nodes;
      const checker = new ClusterChecker();
      const subA = new ChaosSubscriber("chaos-redis-sub-a", "chaos/r/#", checker);
      const subB = new ChaosSubscriber("chaos-redis-sub-b", "chaos/r/#", checker);
      defer(() => subA.close());
      defer(() => subB.close());
      await subA.connect([n1, n2, n3]);
      await subB.connect([n2, n3]);
      const pubs = [
        new ChaosPublisher("chaos-redis-p1", [n1, n2, n3], "chaos/r/p1", 1, checker),
        new ChaosPublisher("chaos-redis-p2", [n2, n3], "chaos/r/p2", 2, checker),
        new ChaosPublisher("chaos-redis-p3", [n3, n2], "chaos/r/p3", 1, checker),
      ];
      for (const p of pubs) defer(() => p.close());
      for (let round = 0; round < (LONG ? 5 : 1); round++) {
        await sleep(1500);
        await cluster.redis.kill();
        await sleep(1000);
        await cluster.redis.start();
        await n1.waitForLog(/Redis reachable again/, 30_000);
      }
      await sleep(LONG ? 10_000 : 2000);
      for (const p of pubs) await p.stop();
      await subA.caughtUp(60_000);
      await subB.caughtUp(60_000);
      const [a, b] = checker.print(
        "redis-restart",
        [subA.name, subB.name],
        `longest-reconnect-to-connack=${Math.round(Math.max(subA.longestGap, subB.longestGap))}ms`,
      );
      assert.equal(a.lost, 0, `lost at sub-a: ${a.lostSample}`);
      assert.equal(b.lost, 0, `lost at sub-b: ${b.lostSample}`);
      assert.equal(subA.sessionsLost + subB.sessionsLost, 0, "sessions survive the restart");
    }),
);
