/**
 * Chaos, cluster: a node frozen for longer than node-timeout under load (SIGSTOP/SIGCONT, and a
 * clock-jump-free pause: the node's own event loop blocked by a test hook), with persistent
 * publishers on every node, a persistent subscriber on the frozen node and one on another. The
 * others take the frozen node over; when it continues it must notice by itself that it was
 * fenced, close its clients without acknowledging anything more, and rejoin: no acknowledged
 * message lost, no session resumed twice (session present on every reconnect).
 */
import assert from "node:assert/strict";
import { REDIS_IGNORE } from "../helpers/redis.ts";
import { scoped, sleep } from "../helpers/broker.ts";
import { ClusterChecker } from "./cluster_checker.ts";
import { ChaosPublisher, ChaosSubscriber, LONG, startChaosCluster } from "./cluster_driver.ts";
import { PAUSE_HOOK_ENV } from "../../main.ts";

const opts = { ignore: REDIS_IGNORE, sanitizeOps: false, sanitizeResources: false };
const TIMEOUT_S = 3;
const PAUSE_MS = LONG ? 15_000 : 2 * TIMEOUT_S * 1000 + 2000;

async function frozenNode(label: string, freeze: "sigstop" | "busy") {
  await scoped(async (defer) => {
    const cluster = await startChaosCluster(TIMEOUT_S, { [PAUSE_HOOK_ENV]: String(PAUSE_MS) });
    defer(() => cluster.stop());
    const [n1, n2, n3] = cluster.nodes;
    const checker = new ClusterChecker();
    const subA = new ChaosSubscriber(`chaos-${label}-sub-a`, `chaos/${label}/#`, checker);
    const subB = new ChaosSubscriber(`chaos-${label}-sub-b`, `chaos/${label}/#`, checker);
    defer(() => subA.close());
    defer(() => subB.close());
    await subA.connect([n1, n2, n3]);
    await subB.connect([n2]);
    const pubs = [
      new ChaosPublisher(`chaos-${label}-p1`, [n1, n2, n3], `chaos/${label}/p1`, 1, checker),
      new ChaosPublisher(`chaos-${label}-p2`, [n2, n3], `chaos/${label}/p2`, 2, checker),
      new ChaosPublisher(`chaos-${label}-p3`, [n3, n2], `chaos/${label}/p3`, 1, checker),
      new ChaosPublisher(`chaos-${label}-p4`, [n1, n3, n2], `chaos/${label}/p4`, 2, checker),
    ];
    for (const p of pubs) defer(() => p.close());
    await sleep(1500);
    if (freeze === "sigstop") {
      n1.signal("SIGSTOP");
      await sleep(PAUSE_MS);
      n1.signal("SIGCONT");
    } else {
      n1.signal("SIGUSR1");
      await n1.waitForLog(/test hook: blocking the event loop/);
    }
    // The frozen node finds out by itself and says so.
    await n1.waitForLog(/node n1 was fenced/, 30_000);
    await n1.waitForLog(/node n1 rejoined under epoch/, 60_000);
    await sleep(LONG ? 10_000 : 2000);
    for (const p of pubs) await p.stop();
    await subA.caughtUp(60_000);
    await subB.caughtUp(30_000);
    if (Deno.env.get("MQTTWK_CHAOS_LOGS") === "1") {
      for (const n of cluster.nodes) {
        Deno.writeTextFileSync(`/tmp/chaos-${label}-${n.id}.log`, n.logs());
      }
    }
    const fenced = n1.logs().split("\n").find((l) => l.includes("was fenced")) ?? "";
    console.log(`chaos ${label}: n1 logged: ${fenced.slice(0, 400)}`);
    const [a, b] = checker.print(
      label,
      [subA.name, subB.name],
      `connack-wait-after-takeover=${Math.round(subA.longestGap)}ms`,
    );
    assert.equal(a.lost, 0, `lost at the frozen node's subscriber: ${a.lostSample}`);
    assert.equal(b.lost, 0, `lost at the other subscriber: ${b.lostSample}`);
    assert.equal(subA.sessionsLost, 0, "session present on every reconnect of sub-a");
    assert.equal(subB.sessionsLost, 0, "session present on every reconnect of sub-b");
    assert.ok(subA.connects >= 2, "the frozen node closed its subscriber, which failed over");
  });
}

Deno.test(
  "chaos: a node stopped with SIGSTOP longer than node-timeout is fenced and rejoins, none lost",
  opts,
  () => frozenNode("sigstop", "sigstop"),
);

Deno.test(
  "chaos: a node whose event loop blocks longer than node-timeout is fenced and rejoins, none lost",
  opts,
  () => frozenNode("busy", "busy"),
);
