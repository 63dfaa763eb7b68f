/**
 * Three broker processes over one Redis, with mqtt.js clients: cross-node delivery, a node
 * killed with SIGKILL during QoS 1 traffic, a Redis restart during traffic.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { crashSigns, PeakRss, reportFigures } from "../helpers/figures.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { REDIS_IGNORE, type RedisServer, startRedis, startRedisCluster } from "../helpers/redis.ts";
import { scoped, sleep, uid } from "../helpers/broker.ts";
import { waitFor } from "../helpers/wait.ts";
import { awaitRoute, type NodeProcess, spawnNode } from "../cluster/nodes.ts";

const opts = { ignore: REDIS_IGNORE, sanitizeOps: false, sanitizeResources: false };

/** Exits nobody asked for (of `running`, nodes not killed on purpose) and crash output of all. */
const crashesOf = (all: NodeProcess[], running: NodeProcess[]) =>
  running.filter((n) => n.exited()).length + all.reduce((k, n) => k + crashSigns(n.logs()), 0);

/** When `re` first shows in `node`'s log (polled; output only, never awaited with a timeout). */
function firstLogAt(node: NodeProcess, re: RegExp): { at: number | undefined; stop(): void } {
  const r = {
    at: undefined as number | undefined,
    stop: () => clearInterval(timer),
  };
  const timer = setInterval(() => {
    if (r.at === undefined && re.test(node.logs())) r.at = performance.now();
  }, 20);
  return r;
}

async function threeNodes(
  redisArgs: string[],
  defer: (c: () => unknown) => void,
  extra: string[] = [],
): Promise<NodeProcess[]> {
  const nodes = await Promise.all(["n1", "n2", "n3"].map((id) => spawnNode(id, redisArgs, extra)));
  for (const n of nodes) defer(() => n.kill());
  return nodes;
}

/** A client named `name` (its username too) whose QoS 1 will on `topic` says `payload`. */
function connectWithWill(
  url: string,
  name: string,
  clean: boolean,
  topic: string,
  payload: string,
): ReturnType<typeof connectMqttJs> {
  return connectMqttJs(url, {
    clientId: name,
    username: name,
    clean,
    will: { topic, payload, qos: 1 },
  });
}

/**
 * Subscribes a probe on `url` to `topic` until the node serves the retained message there:
 * retained changes reach the other nodes asynchronously (`ch:retained`).
 */
async function awaitRetained(url: string, topic: string): Promise<void> {
  const probe = await connectMqttJs(url);
  try {
    await waitFor(async () => {
      await probe.subscribe(topic, 1);
      await probe.sync(); // a retained message follows the SUBACK: it has arrived by now
      if (probe.inbox.on(topic).length > 0) return true;
      await probe.client.unsubscribeAsync(topic);
      return false;
    }, { what: `${url} to serve the retained message on ${topic}`, timeout: 10_000, interval: 50 });
  } finally {
    await probe.close();
  }
}

/**
 * Waits until Redis holds what a survivor needs to publish the wills of `node`'s clients:
 * `clean` in the node's kept wills (`P {g}:wills:<node>`), `gone` not there, and a session
 * record for each of `persistent`.
 */
function awaitKeptWills(
  redis: RedisServer,
  node: string,
  want: { clean: string[]; gone?: string[]; persistent: string[] },
): Promise<true> {
  let seen = "";
  return waitFor(async () => {
    const kept = (await redis.cli("HKEYS", `mqttwk:{g}:wills:${node}`)).split("\n")
      .map((l) => l.trim()).filter((l) => l !== "");
    const sessions = await Promise.all(
      want.persistent.map(async (id) => (await redis.cli("EXISTS", `mqttwk:s:{${id}}:s`)).trim()),
    );
    seen = `wills of ${kept.join(",") || "nobody"}; session records: ${sessions.join(",")}`;
    return want.clean.every((id) => kept.includes(id)) &&
      !(want.gone ?? []).some((id) => kept.includes(id)) && sessions.every((n) => n === "1");
  }, { what: `the wills of ${node}'s clients in Redis`, interval: 20, detail: () => seen });
}

for (const kind of ["standalone", "cluster"] as const) {
  Deno.test({
    ...opts,
    name: `three nodes over ${kind} Redis deliver across nodes at every QoS and share retained`,
    fn: () =>
      scoped(async (defer) => {
        let args: string[];
        if (kind === "standalone") {
          const r = await startRedis();
          defer(() => r.kill());
          args = [`--redis.port=${r.port}`];
        } else {
          const rc = await startRedisCluster();
          defer(() => rc.stop());
          args = ["--redis.mode=cluster", `--redis.nodes=${rc.nodes}`];
        }
        const [n1, n2, n3] = await threeNodes(args, defer);
        const t = uid("xnode");
        const sub = await connectMqttJs(n1.url);
        defer(sub.close);
        await sub.subscribe(`${t}/#`, 2);
        const pub = await connectMqttJs(n2.url);
        defer(pub.close);
        await awaitRoute(pub, sub, `${t}/probe`);
        for (const qos of [0, 1, 2] as const) {
          await pub.publish(`${t}/q${qos}`, `at ${qos}`, { qos });
          const m = await sub.inbox.waitFor((m) => m.topic === `${t}/q${qos}`);
          assert.equal(m.payload, `at ${qos}`);
          assert.equal(m.qos, qos);
        }
        await pub.publish(`${t}/r`, "retained", { qos: 1, retain: true });
        await awaitRetained(n3.url, `${t}/r`);
        const late = await connectMqttJs(n3.url);
        defer(late.close);
        await late.subscribe(`${t}/r`, 1);
        const r = await late.inbox.waitFor((m) => m.topic === `${t}/r`);
        assert.equal(r.payload, "retained");
        assert.equal(r.retain, true);
      }),
  });
}

Deno.test({
  ...opts,
  name: "a node killed with SIGKILL: a survivor publishes the wills of its clients, clean or not",
  fn: () =>
    scoped(async (defer) => {
      const r = await startRedis();
      defer(() => r.kill());
      // Each user may write only its own will topic, so a will published as anyone else (say,
      // with the username lost on the way to the survivor) is refused.
      const dir = await Deno.makeTempDir({ prefix: "mqttwk-wills-" });
      defer(() => Deno.remove(dir, { recursive: true }));
      const acl = `${dir}/acl`;
      await Deno.writeTextFile(
        acl,
        "topic readwrite #\ntopic deny +/will/#\n\nuser watcher\ntopic read #\n\n" +
          "pattern write +/will/%u\n",
      );
      const [n1, n2, n3] = await threeNodes([`--redis.port=${r.port}`], defer, [
        `--mqttwk.broker.auth.acl-file=${acl}`,
      ]);
      const t = uid("wills");
      const watcher = await connectMqttJs(n2.url, { username: "watcher" });
      defer(watcher.close);
      await watcher.subscribe(`${t}/#`, 1);
      const probe = await connectMqttJs(n1.url);
      await awaitRoute(probe, watcher, `${t}/probe`);
      await probe.close();
      const own = (name: string) =>
        connectWithWill(
          n1.url,
          `${t}-${name}`,
          name !== "kept",
          `${t}/will/${t}-${name}`,
          `${name} gone`,
        );
      const clean = await own("clean");
      const kept = await own("kept");
      // One that leaves properly must not have its will published by anyone.
      const polite = await own("polite");
      await polite.close();
      await n1.waitForLog(new RegExp(`client ${t}-polite disconnected`), 5_000);
      await awaitKeptWills(r, "n1", {
        clean: [`${t}-clean`],
        gone: [`${t}-polite`],
        persistent: [`${t}-kept`],
      });
      await n1.kill();
      clean.client.end(true);
      kept.client.end(true);
      const wills = async () =>
        (await watcher.inbox.waitForCount(2, (m) => m.topic.startsWith(`${t}/will/`), 20_000))
          .map((m) => m.payload).sort();
      assert.deepEqual(
        await wills(),
        ["clean gone", "kept gone"],
        `--- n2:\n${n2.logs()}\n--- n3:\n${n3.logs()}`,
      );
      const took = /took over node n1: .*, 1 will\(s\) of clean-session clients/;
      await n2.waitForLog(took, 1000).catch(() => n3.waitForLog(took, 1000));
      // "Nothing more comes" (no second copy, no will for polite) has no event: a grace period.
      await sleep(500);
      const all = watcher.inbox.on().filter((m) => m.topic.startsWith(`${t}/will/`));
      assert.deepEqual(all.map((m) => m.payload).sort(), [
        "clean gone",
        "kept gone",
      ], "each will once, and none for the client that disconnected");
    }),
});

Deno.test({
  ...opts,
  name: "a node restarted under its id after SIGKILL publishes the wills its earlier run left",
  fn: () =>
    scoped(async (defer) => {
      const r = await startRedis();
      defer(() => r.kill());
      const args = [`--redis.port=${r.port}`];
      // n2 waits long before taking a silent node over, so the restarted n1 comes first.
      const n2 = await spawnNode("n2", args, ["--mqttwk.broker.cluster.node-timeout=30"]);
      defer(() => n2.kill());
      let n1 = await spawnNode("n1", args);
      defer(() => n1.kill());
      const t = uid("rewills");
      const watcher = await connectMqttJs(n2.url);
      defer(watcher.close);
      await watcher.subscribe(`${t}/#`, 1);
      const probe = await connectMqttJs(n1.url);
      await awaitRoute(probe, watcher, `${t}/probe`);
      await probe.close();
      const clean = await connectWithWill(n1.url, `${t}-clean`, true, `${t}/will`, "clean gone");
      const kept = await connectWithWill(n1.url, `${t}-kept`, false, `${t}/will`, "kept gone");
      await awaitKeptWills(r, "n1", { clean: [`${t}-clean`], persistent: [`${t}-kept`] });
      await n1.kill();
      clean.client.end(true);
      kept.client.end(true);
      n1 = await spawnNode("n1", args);
      const wills = await watcher.inbox.waitForCount(2, (m) => m.topic === `${t}/will`, 15_000)
        .catch((e) => {
          throw new Error(`${e.message}\n--- n1:\n${n1.logs()}\n--- n2:\n${n2.logs()}`);
        });
      assert.deepEqual(wills.map((m) => m.payload).sort(), ["clean gone", "kept gone"]);
      assert.doesNotMatch(n2.logs(), /took over node n1/, "n1 published them itself");
    }),
});

Deno.test({
  ...opts,
  name: "a node killed with SIGKILL during QoS 1 traffic loses no acknowledged message",
  fn: () =>
    scoped(async (defer) => {
      const r = await startRedis();
      defer(() => r.kill());
      const [n1, n2, n3] = await threeNodes([`--redis.port=${r.port}`], defer);
      const rss = new PeakRss(() => [n1, n2, n3].filter((n) => !n.exited()).map((n) => n.pid));
      defer(() => rss.stop());
      const t = uid("kill");
      const subOpts = { clientId: `${t}-sub`, clean: false, connectTimeout: 30_000 };
      const sub = await connectMqttJs(n1.url, subOpts);
      await sub.subscribe(`${t}/#`, 1);
      const pub = await connectMqttJs(n2.url);
      defer(pub.close);
      await awaitRoute(pub, sub, `${t}/probe`);
      const acked: string[] = [];
      let stop = false;
      const publishing = (async () => {
        for (let i = 0; !stop && i < 2000; i++) {
          await pub.publish(`${t}/m`, `m${i}`, { qos: 1 });
          acked.push(`m${i}`);
          await sleep(2); // paces the traffic: a steady stream across the kill, not a burst
        }
      })();
      await waitFor(() => sub.inbox.on(`${t}/m`).length >= 50, {
        what: "50 messages to reach the subscriber before the kill",
        detail: () => `${acked.length} acknowledged, ${sub.inbox.on(`${t}/m`).length} received`,
      });
      await n1.kill();
      sub.client.end(true);
      // The outage window: publishing goes on while n1 is dead and is then taken over.
      await sleep(1000);
      stop = true;
      await publishing;
      assert.ok(acked.length > 50, `only ${acked.length} published`);
      // The subscriber comes back on another node and resumes its session.
      // (The handler is attached before CONNECT: resent messages follow the CONNACK at once.)
      const got = new Set<string>([...sub.inbox.on(`${t}/m`).map((m) => m.payload)]);
      let deliveries = sub.inbox.on(`${t}/m`).length;
      const resumeStart = performance.now();
      const back = mqtt.connect(n3.url, { ...subOpts, protocolVersion: 4, reconnectPeriod: 0 });
      back.on("message", (topic, payload) => {
        if (topic === `${t}/m`) deliveries++;
        got.add(new TextDecoder().decode(payload));
      });
      back.on("error", () => {});
      defer(() => back.endAsync());
      const want = new Set(acked);
      await waitFor(() => [...want].every((m) => got.has(m)), {
        what: "every acknowledged message at the resumed subscriber",
        timeout: 20_000,
        interval: 50,
      }).catch(() => {}); // the assertion below says which are missing
      const missing = [...want].filter((m) => !got.has(m));
      reportFigures("cluster node SIGKILL during QoS 1 traffic", {
        sent: acked.length,
        acknowledged: acked.length,
        lost: missing.length,
        // QoS 1 may redeliver what n1 sent but never saw acknowledged: allowed, counted here.
        duplicated: Math.max(0, deliveries - [...got].filter((m) => m.startsWith("m")).length),
        crashes: crashesOf([n1, n2, n3], [n2, n3]),
        peakRss: rss.stop(),
        recoveryMs: performance.now() - resumeStart,
        note: "3 nodes; recovery: the subscriber's reconnect to another node until every " +
          "acknowledged message is in",
      });
      assert.equal(
        missing.length,
        0,
        `${missing.length} of ${want.size} acknowledged messages lost (${missing.slice(0, 5)}...)` +
          `\n--- n2:\n${n2.logs()}\n--- n3:\n${n3.logs()}`,
      );
      await n2.waitForLog(/took over node n1|node n1 is dead/, 1000).catch(() =>
        n3.waitForLog(/took over node n1|node n1 is dead/, 1000)
      );
    }),
});

Deno.test({
  ...opts,
  name: "a Redis restart during traffic needs no node restart and loses no acknowledged message",
  fn: () =>
    scoped(async (defer) => {
      const r: RedisServer = await startRedis({ aof: true });
      defer(() => r.kill());
      const [n1, n2, n3] = await threeNodes([`--redis.port=${r.port}`], defer);
      const rss = new PeakRss(() => [n1.pid, n2.pid, n3.pid]);
      defer(() => rss.stop());
      const t = uid("rr");
      // Reconnects like any client of a persistent session: the outage is longer than the node
      // timeout (1 s), so a survivor that reaches Redis first may take n1 over, legitimately,
      // and n1 then closes its clients (in CI it did once, and this subscriber, which did not
      // reconnect, missed every message after it). It resumes its session wherever it is held.
      const sub = await connectMqttJs(n1.url, {
        clientId: `${t}-sub`,
        clean: false,
        reconnectPeriod: 250,
      });
      defer(sub.close);
      await sub.subscribe(`${t}/#`, 1);
      const pub = await connectMqttJs(n2.url, { connectTimeout: 30_000 });
      defer(pub.close);
      await awaitRoute(pub, sub, `${t}/probe`);
      const acked: string[] = [];
      const publishing = (async () => {
        for (let i = 0; i < 300; i++) {
          await pub.publish(`${t}/m`, `m${i}`, { qos: 1 });
          acked.push(`m${i}`);
          await sleep(3); // paces the traffic: a steady stream across the restart, not a burst
        }
      })();
      await waitFor(() => sub.inbox.on(`${t}/m`).length >= 30, {
        what: "30 messages to reach the subscriber before Redis stops",
        detail: () => `${acked.length} acknowledged, ${sub.inbox.on(`${t}/m`).length} received`,
      });
      await r.stop();
      // The outage window: publishing goes on while Redis is down.
      await sleep(1500);
      await r.start();
      const redisBack = performance.now();
      const reachable = firstLogAt(n1, /Redis reachable again/);
      defer(() => reachable.stop());
      await publishing;
      await n1.waitForLog(/Redis reachable again/, 10_000);
      const want = new Set(acked);
      await sub.inbox.waitForCount(want.size, (m) => m.topic === `${t}/m`, 20_000).catch(() => {});
      const got = new Set(sub.inbox.on(`${t}/m`).map((m) => m.payload));
      const missing = [...want].filter((m) => !got.has(m));
      const unexpected = [...got].filter((m) => !want.has(m));
      reachable.stop();
      reportFigures("Redis restart during cluster traffic", {
        sent: acked.length,
        acknowledged: acked.length,
        lost: missing.length,
        duplicated: sub.inbox.on(`${t}/m`).length - got.size,
        crashes: crashesOf([n1, n2, n3], [n1, n2, n3]),
        peakRss: rss.stop(),
        recoveryMs: reachable.at !== undefined ? reachable.at - redisBack : undefined,
        note: "3 nodes, 1.5 s outage; recovery: Redis back to the node's reachable-again log",
      });
      assert.deepEqual(
        missing,
        [],
        `${missing.length} of ${want.size} acknowledged messages lost ` +
          `(received but never acknowledged: ${unexpected.join(",") || "none"})` +
          `\n--- n1:\n${n1.logs()}\n--- n2:\n${n2.logs()}`,
      );
      // Routes and cross-node delivery work again after the restart.
      await awaitRoute(pub, sub, `${t}/after`);
    }),
});
