/**
 * Runs a throw-away single-node Kafka in the foreground for trying the bridge locally:
 *
 *   deno task kafka                 # 127.0.0.1:9092, Kafka 4.1.1 (fetched once with Maven)
 *   deno task kafka --port 19092 --version 4.1.1
 *
 * Then, in another terminal:
 *   deno task start --mqttwk.broker.kafka.broker-enabled=true
 *
 * Data lives in a temporary directory and is deleted on Ctrl-C.
 */
import { parseArgs } from "node:util";
import { KAFKA_VERSION, startKafka } from "./launcher.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string", default: "9092" },
    version: { type: "string", default: KAFKA_VERSION },
    partitions: { type: "string", default: "3" },
  },
});

console.log(`starting Kafka ${values.version} (the first run fetches it from Maven Central)...`);
const kafka = await startKafka({
  version: values.version,
  port: Number(values.port),
  partitions: Number(values.partitions),
  // Started by hand to try the bridge or measure it: worth the slower start.
  fullJit: true,
});
console.log(
  `Kafka ${values.version} ready at ${kafka.bootstrap} (data in ${kafka.dir}); Ctrl-C stops it`,
);

const { promise, resolve } = Promise.withResolvers<void>();
Deno.addSignalListener("SIGINT", () => resolve());
Deno.addSignalListener("SIGTERM", () => resolve());
await promise;
console.log("stopping Kafka...");
await kafka.close();
Deno.exit(0);
