/**
 * Kafka bridge benchmark: MQTT -> Kafka records/s, and what the bridge adds to a QoS 1 publish's
 * latency, with the bridge off, fire-and-forget and at-least-once. Starts its own Kafka (see
 * scripts/kafka/launcher.ts) and one MqttWk process per mode, all on loopback.
 *
 *   deno task bench:kafka
 *   deno task bench:kafka --duration 5 --connections 4 --window 256 --payload 100 --samples 1000
 *   deno task bench:kafka --bootstrap 127.0.0.1:9092     # an already running Kafka
 */
import { parseArgs } from "node:util";
import { Kafka, logLevel } from "kafkajs";
import { BenchConn, sleep } from "./client.ts";
import { START_V8_FLAGS } from "./brokers.ts";
import { nowMs, PublishBatcher } from "./mqtt_wire.ts";
import { startKafka } from "../scripts/kafka/launcher.ts";
import { silenceKafkajsTimerWarnings } from "../src/bridge/kafka/kafkajs_warnings.ts";

silenceKafkajsTimerWarnings();

const { values: opt } = parseArgs({
  args: Deno.args,
  options: {
    duration: { type: "string", default: "5" },
    connections: { type: "string", default: "4" },
    window: { type: "string", default: "256" },
    payload: { type: "string", default: "100" },
    samples: { type: "string", default: "1000" },
    bootstrap: { type: "string" },
  },
});
const DURATION_S = Number(opt.duration);
const CONNECTIONS = Number(opt.connections);
const WINDOW = Number(opt.window);
const PAYLOAD = Number(opt.payload);
const SAMPLES = Number(opt.samples);

type Mode = "off" | "fire-and-forget" | "at-least-once";
const MODES: Mode[] = ["off", "fire-and-forget", "at-least-once"];

interface Running {
  port: number;
  stop(): Promise<void>;
}

async function startMqttwk(bootstrap: string, mode: Mode, topic: string): Promise<Running> {
  const args = [
    "run",
    "--allow-all",
    ...START_V8_FLAGS,
    "main.ts",
    "--port=0",
    "--host=127.0.0.1",
    "--persistence=memory",
    "--mqttwk.broker.websocket-enabled=false",
    "--mqttwk.broker.max-inflight=65535",
    "--log-level=info",
  ];
  if (mode !== "off") {
    args.push(
      "--mqttwk.broker.kafka.broker-enabled=true",
      `--mqttwk.broker.kafka.bootstrap.servers=${bootstrap}`,
      `--mqttwk.broker.kafka.producer.topic=${topic}`,
      `--mqttwk.broker.kafka.delivery=${mode}`,
    );
  }
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: new URL("../", import.meta.url),
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let port = 0;
  const ready = mode === "off" ? /listening tcp/ : /kafka producer connected/;
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`mqttwk exited before it was ready:\n${text}`);
    text += value;
    const m = /listening tcp \S+:(\d+)/.exec(text);
    if (m) port = Number(m[1]);
    if (port && ready.test(text)) break;
  }
  // Keep draining stdout so the broker never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })().catch(() => {});
  return {
    port,
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

/** Closed-loop QoS 1 publishing: each connection keeps `WINDOW` publishes unacknowledged. */
async function throughput(port: number, topic: string): Promise<{ acked: number; secs: number }> {
  const conns = await Promise.all(
    [...Array(CONNECTIONS).keys()].map((i) =>
      BenchConn.open(port, `bench-kafka-${i}-${Date.now()}`)
    ),
  );
  let acked = 0;
  const t0 = performance.now();
  const end = t0 + DURATION_S * 1000;
  await Promise.all(conns.map(async (c) => {
    const batcher = new PublishBatcher(`${topic}/${Math.random()}`, 1, PAYLOAD, WINDOW);
    let inflight = 0;
    let wake: (() => void) | null = null;
    c.onPubackMsg = () => {
      inflight--;
      acked++;
      if (wake && inflight <= WINDOW / 2) {
        const w = wake;
        wake = null;
        w();
      }
    };
    while (performance.now() < end) {
      if (inflight <= WINDOW / 2) {
        const n = WINDOW - inflight;
        inflight += n;
        await c.write(batcher.fill(n, nowMs()));
      } else {
        await Promise.race([new Promise<void>((r) => wake = r), sleep(100)]);
      }
    }
    const drainEnd = performance.now() + 30_000;
    while (inflight > 0 && performance.now() < drainEnd) await sleep(5);
  }));
  const secs = (performance.now() - t0) / 1000;
  await Promise.all(conns.map((c) => c.close()));
  return { acked, secs };
}

/** Sequential QoS 1 publishes on one connection: PUBLISH -> PUBACK round trips in ms. */
async function latency(port: number, topic: string): Promise<number[]> {
  const c = await BenchConn.open(port, `bench-kafka-lat-${Date.now()}`);
  const batcher = new PublishBatcher(topic, 1, PAYLOAD, 1);
  const out: number[] = [];
  for (let i = 0; i < SAMPLES + 50; i++) {
    const acked = new Promise<void>((r) => c.onPubackMsg = () => r());
    const t = performance.now();
    await c.write(batcher.fill(1, nowMs()));
    await acked;
    if (i >= 50) out.push(performance.now() - t);
  }
  await c.close();
  return out;
}

async function kafkaCount(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offs = await admin.fetchTopicOffsets(topic);
    return offs.reduce((s, p) => s + Number(p.offset), 0);
  } catch {
    return 0;
  } finally {
    await admin.disconnect();
  }
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

const server = opt.bootstrap ? null : await startKafka();
const bootstrap = opt.bootstrap ?? server!.bootstrap;
const kafka = new Kafka({ clientId: "bench", brokers: [bootstrap], logLevel: logLevel.NOTHING });
console.log(
  `Kafka at ${bootstrap}; ${CONNECTIONS} connections x window ${WINDOW}, QoS 1, ` +
    `${PAYLOAD}-byte payloads, ${DURATION_S} s per run, ${SAMPLES} latency samples`,
);

const rows: string[][] = [];
let baseP50 = 0;
try {
  for (const mode of MODES) {
    const topic = `bench-${mode}-${Date.now()}`;
    const b = await startMqttwk(bootstrap, mode, topic);
    try {
      // Warm-up: JIT on both sides, topic creation, producer metadata.
      await latency(b.port, "warm/up");
      const lat = await latency(b.port, "lat/x");
      const n0 = mode === "off" ? 0 : await kafkaCount(kafka, topic);
      const start = performance.now();
      const t = await throughput(b.port, "load");
      let kafkaRate = "-";
      if (mode !== "off") {
        // Until Kafka stops growing: fire-and-forget may still be draining its buffer.
        let n = await kafkaCount(kafka, topic);
        let grewAt = performance.now();
        while (performance.now() - grewAt < 1500) {
          await sleep(250);
          const m = await kafkaCount(kafka, topic);
          if (m > n) grewAt = performance.now();
          n = m;
        }
        const delivered = n - n0;
        kafkaRate = String(Math.round(delivered / ((grewAt - start) / 1000)));
        if (delivered < t.acked) kafkaRate += ` (${t.acked - delivered} dropped)`;
      }
      const p50 = pct(lat, 50);
      if (mode === "off") baseP50 = p50;
      rows.push([
        mode,
        String(Math.round(t.acked / t.secs)),
        kafkaRate,
        p50.toFixed(2),
        pct(lat, 99).toFixed(2),
        mode === "off" ? "-" : `+${(p50 - baseP50).toFixed(2)}`,
      ]);
    } finally {
      await b.stop();
    }
  }
} finally {
  await server?.close();
}

const head = ["bridge", "PUBACK/s", "Kafka records/s", "lat p50 ms", "lat p99 ms", "added p50 ms"];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r: string[]) => r.map((c, i) => c.padStart(widths[i])).join("  ");
console.log(line(head));
for (const r of rows) console.log(line(r));
