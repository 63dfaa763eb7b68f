/**
 * The Kafka bridge alone, in-process: offers records to the bridge's sink as fast as the bridge
 * acknowledges them (at-least-once, a bounded number outstanding, like publishers' windows) and
 * reports records/s Kafka acknowledged and the CPU time the process (both threads) spent per
 * record. No MQTT, so it measures the bridge's own ceiling; the CPU figure depends far less on
 * what else loads the machine than the rate does.
 *
 *   deno run --allow-all bench/kafka_sink.ts --bootstrap 127.0.0.1:9092 --seconds 5
 *
 * With `--rate N` it offers N records/s instead (5 per millisecond tick at 5,000) and reports the
 * latency from offer to Kafka's acknowledgement after a 3 s warm-up: what the bridge adds to a
 * QoS 1 PUBACK at that rate without MQTT, the generator or the broker competing for the cores.
 *
 *   deno run --allow-all bench/kafka_sink.ts --bootstrap 127.0.0.1:9092 --seconds 10 --rate 5000
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { defaultConfig } from "../src/config/load.ts";
import { createKafkaBridge } from "../src/bridge/kafka/mod.ts";
import type { StoredMessage } from "../src/broker/model.ts";
import { silentLogger } from "../src/log.ts";
import { startKafka } from "../scripts/kafka/launcher.ts";

const { values: opt } = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "5" },
    outstanding: { type: "string", default: "4096" },
    payload: { type: "string", default: "64" },
    bootstrap: { type: "string" },
    rate: { type: "string" },
  },
});

/** Warm-up of a fixed-rate run whose latencies are not counted. */
const WARM_UP_MS = 3000;

/** Runs one at-least-once load against `bootstrap`; returns acknowledged records per second. */
export async function sinkRate(
  bootstrap: string,
  seconds: number,
  outstanding: number,
  payload: number,
): Promise<{ rate: number; cpuUsPerRecord: number }> {
  const config = {
    ...defaultConfig(),
    kafkaEnabled: true,
    kafkaBootstrapServers: bootstrap,
    kafkaProducerTopic: `bench-sink-${Date.now()}`,
  };
  const { bridge, from } = await startSink(config);
  const body = new Uint8Array(payload).fill(120);
  let seq = 0;
  let acked = 0;
  let inflight = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const { promise: done, resolve } = Promise.withResolvers<void>();
  const onAck = () => {
    acked++;
    inflight--;
    if (performance.now() < end) pump();
    else if (inflight === 0) resolve();
  };
  const pump = () => {
    while (inflight < outstanding) {
      const msg = record(`bench-${seq}`, seq, body);
      seq++;
      inflight++;
      const r = bridge.sink.accept(msg, from);
      if (r) r.then(onAck, () => inflight--);
      else onAck();
    }
  };
  pump();
  await done;
  const rate = acked / ((performance.now() - t0) / 1000);
  const cpu = process.cpuUsage(cpu0);
  await bridge.stop();
  return { rate, cpuUsPerRecord: (cpu.user + cpu.system) / acked };
}

/** The `seq`th QoS 1 message offered: topics load/0 to load/7 (Kafka keys), 64 B by default. */
function record(id: string, seq: number, payload: Uint8Array): StoredMessage {
  return {
    id,
    topic: `load/${seq & 7}`,
    payload,
    qos: 1,
    retain: false,
    createdAt: Date.now(),
  } as unknown as StoredMessage;
}

/** A started bridge (at-least-once, default settings) and the publisher its records come from. */
async function startSink(config: ReturnType<typeof defaultConfig>) {
  const bridge = createKafkaBridge(config, silentLogger)!;
  await bridge.start(
    {
      nodeId: "bench",
      publish: () => {},
      commitBarrier: () => Promise.resolve(),
      isValidTopicName: () => true,
    } as unknown as Parameters<typeof bridge.start>[0],
  );
  while (!bridge.stats().connected) await new Promise((r) => setTimeout(r, 20));
  const from = {
    clientId: "bench-pub",
    username: undefined,
    remoteAddress: "127.0.0.1",
    transport: "tcp",
    protocolVersion: 4,
  } as unknown as Parameters<typeof bridge.sink.accept>[1];
  return { bridge, from };
}

/**
 * Offers `rate` records/s for `seconds` (a 1 ms timer catching up on the records due) and returns
 * the latency percentiles (ms) from offer to acknowledgement of those offered after the warm-up.
 */
export async function sinkLatency(
  bootstrap: string,
  seconds: number,
  rate: number,
  payload: number,
): Promise<{ p50: number; p99: number; p999: number; max: number; count: number }> {
  const config = {
    ...defaultConfig(),
    kafkaEnabled: true,
    kafkaBootstrapServers: bootstrap,
    kafkaProducerTopic: `bench-sink-lat-${Date.now()}`,
  };
  const { bridge, from } = await startSink(config);
  const body = new Uint8Array(payload).fill(120);
  const lat: number[] = [];
  const t0 = performance.now();
  const stop = t0 + (seconds * 1000 + WARM_UP_MS);
  let seq = 0;
  let open = 0;
  const { promise: done, resolve } = Promise.withResolvers<void>();
  let due = t0;
  const timer = setInterval(() => {
    const now = performance.now();
    for (; due <= now && due < stop; due += 1000 / rate) {
      const sent = performance.now();
      const counted = sent - t0 >= WARM_UP_MS;
      const msg = record(`bench-lat-${seq}`, seq, body);
      seq++;
      open++;
      const acked = () => {
        if (counted) lat.push(performance.now() - sent);
        if (--open === 0 && due >= stop) resolve();
      };
      const r = bridge.sink.accept(msg, from);
      if (r) r.then(acked, acked);
      else acked();
    }
    if (due >= stop) {
      clearInterval(timer);
      if (open === 0) resolve();
    }
  }, 1);
  await done;
  await bridge.stop();
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))];
  return { p50: q(0.5), p99: q(0.99), p999: q(0.999), max: lat[lat.length - 1], count: lat.length };
}

if (import.meta.main) {
  const server = opt.bootstrap ? null : await startKafka({ fullJit: true });
  try {
    if (opt.rate !== undefined) {
      const r = await sinkLatency(
        opt.bootstrap ?? server!.bootstrap,
        Number(opt.seconds),
        Number(opt.rate),
        Number(opt.payload),
      );
      const f = (n: number) => n.toFixed(2);
      console.log(
        `bridge alone, at-least-once, ${opt.rate} records/s: ${r.count} records after the ` +
          `warm-up, offer -> ack p50 ${f(r.p50)} ms, p99 ${f(r.p99)} ms, ` +
          `p99.9 ${f(r.p999)} ms, max ${f(r.max)} ms`,
      );
    } else {
      const { rate, cpuUsPerRecord } = await sinkRate(
        opt.bootstrap ?? server!.bootstrap,
        Number(opt.seconds),
        Number(opt.outstanding),
        Number(opt.payload),
      );
      console.log(
        `bridge alone, at-least-once: ${Math.round(rate)} records/s acknowledged, ` +
          `${cpuUsPerRecord.toFixed(1)} µs CPU per record`,
      );
    }
  } finally {
    await server?.close();
  }
}
