/**
 * The Kafka bridge alone, in-process: offers records to the bridge's sink as fast as the bridge
 * acknowledges them (at-least-once, a bounded number outstanding, like publishers' windows) and
 * reports records/s Kafka acknowledged and the CPU time the process (both threads) spent per
 * record. No MQTT, so it measures the bridge's own ceiling; the CPU figure depends far less on
 * what else loads the machine than the rate does.
 *
 *   deno run --allow-all bench/kafka_sink.ts --bootstrap 127.0.0.1:9092 --seconds 5
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
  },
});

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
      const msg = {
        id: `bench-${seq}`,
        topic: `load/${seq & 7}`,
        payload: body,
        qos: 1,
        retain: false,
        createdAt: Date.now(),
      } as unknown as StoredMessage;
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

if (import.meta.main) {
  const server = opt.bootstrap ? null : await startKafka({ fullJit: true });
  try {
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
  } finally {
    await server?.close();
  }
}
