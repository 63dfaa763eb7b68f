/**
 * Cluster point-to-point benchmark: one publisher, one subscriber, QoS 0 and 1, with both clients
 * on the same node (single-node path) and on different nodes (cross-node path through Redis).
 * Starts its own redis-server and two cluster nodes; prints throughput and latency percentiles.
 *
 *   deno run --allow-all bench/cluster_p2p.ts [messages=5000] [window=100] [payload=64]
 */
import mqtt from "mqtt";
import { Buffer } from "node:buffer";
import { startRedis } from "../tests/helpers/redis.ts";
import { spawnNode } from "../tests/cluster/nodes.ts";

const N = Number(Deno.args[0] ?? 5000);
const WINDOW = Number(Deno.args[1] ?? 100);
const SIZE = Number(Deno.args[2] ?? 64);

function connect(url: string, clientId: string): Promise<mqtt.MqttClient> {
  return mqtt.connectAsync(url, { clientId, reconnectPeriod: 0, protocolVersion: 4 });
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function run(label: string, pubUrl: string, subUrl: string, qos: 0 | 1) {
  const topic = `bench/${label.replace(/\W+/g, "-")}/${qos}/${Date.now()}`;
  const sub = await connect(subUrl, `sub-${crypto.randomUUID().slice(0, 8)}`);
  const pub = await connect(pubUrl, `pub-${crypto.randomUUID().slice(0, 8)}`);
  await sub.subscribeAsync(topic, { qos });
  // Routes reach the other node through Redis pub/sub: wait until a probe arrives.
  for (let got = false; !got;) {
    const seen = new Promise<boolean>((r) => {
      const t = setTimeout(() => r(false), 100);
      sub.once("message", () => {
        clearTimeout(t);
        r(true);
      });
    });
    pub.publish(topic, "probe", { qos: 0 });
    got = await seen;
  }
  await new Promise((r) => setTimeout(r, 200));
  const lat: number[] = [];
  let received = 0;
  const done = Promise.withResolvers<void>();
  sub.on("message", (_t, payload) => {
    if (payload.byteLength < 8) return;
    lat.push(performance.now() - payload.readDoubleBE(0));
    if (++received >= N * (qos === 0 ? 0.99 : 1)) done.resolve();
  });
  const body = Buffer.alloc(Math.max(8, SIZE));
  const start = performance.now();
  let inflight = 0;
  let sent = 0;
  await new Promise<void>((resolve) => {
    const next = () => {
      while (inflight < WINDOW && sent < N) {
        const b = Buffer.from(body);
        b.writeDoubleBE(performance.now(), 0);
        inflight++;
        sent++;
        pub.publish(topic, b, { qos }, () => {
          inflight--;
          if (sent >= N && inflight === 0) resolve();
          else next();
        });
      }
    };
    next();
  });
  const timeout = setTimeout(() => done.resolve(), 30_000);
  await done.promise;
  clearTimeout(timeout);
  const secs = (performance.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  console.log(
    `${label.padEnd(12)} QoS ${qos}: ${received}/${N} msgs in ${secs.toFixed(2)} s = ` +
      `${Math.round(received / secs)} msg/s; latency ms p50 ${pct(lat, 0.5).toFixed(2)} ` +
      `p99 ${pct(lat, 0.99).toFixed(2)} max ${lat[lat.length - 1].toFixed(2)}`,
  );
  await pub.endAsync();
  await sub.endAsync();
}

const redis = await startRedis();
const args = [`--redis.port=${redis.port}`];
const n1 = await spawnNode("bench-n1", args);
const n2 = await spawnNode("bench-n2", args);
try {
  console.log(`cluster p2p: ${N} messages, window ${WINDOW}, payload ${Math.max(8, SIZE)} B`);
  for (const qos of [0, 1] as const) {
    await run("single-node", n1.url, n1.url, qos);
    await run("cross-node", n2.url, n1.url, qos);
  }
} finally {
  await n1.stop();
  await n2.stop();
  await redis.kill();
}
