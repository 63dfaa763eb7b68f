/**
 * Runs a single-node Apache Kafka (KRaft, broker + controller in one JVM) from the jars that
 * scripts/kafka/fetch.sh puts in $HOME/.cache/mqttwk/kafka-<version>/libs. Used by the Kafka
 * tests, the Kafka benchmark and `deno task kafka`.
 */
import { Kafka, logLevel } from "kafkajs";
import { silenceKafkajsTimerWarnings } from "../../src/bridge/kafka/kafkajs_warnings.ts";

silenceKafkajsTimerWarnings();

export const KAFKA_VERSION = Deno.env.get("MQTTWK_KAFKA_VERSION") || "4.1.1";
const FETCH_SCRIPT = new URL("./fetch.sh", import.meta.url).pathname;
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

export interface KafkaServer {
  /** "127.0.0.1:<port>" */
  bootstrap: string;
  port: number;
  /** Temporary directory with server.properties and the data. */
  dir: string;
  running(): boolean;
  /** The JVM's process id while it runs (for CPU figures), else null. */
  pid(): number | null;
  /** Everything the JVM printed (warnings and errors only). */
  logs(): string;
  /** Stops the broker, keeping its data and ports so start() brings the same cluster back. */
  stop(): Promise<void>;
  /** Kills the broker at once (SIGKILL, as a crash), keeping its data and ports for start(). */
  kill(): Promise<void>;
  /** Starts a stopped broker again and waits until it serves requests. */
  start(): Promise<void>;
  /** Stops the broker and deletes its data. */
  close(): Promise<void>;
}

/** Makes sure the jars are cached (fetching them with Maven if needed); returns the libs dir. */
export async function ensureKafkaJars(version = KAFKA_VERSION): Promise<string> {
  const out = await new Deno.Command("bash", {
    args: [FETCH_SCRIPT, version],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  if (!out.success) {
    throw new Error(
      `scripts/kafka/fetch.sh ${version} failed (exit ${out.code}):\n` +
        text.decode(out.stderr) + text.decode(out.stdout),
    );
  }
  return text.decode(out.stdout).trim().split("\n").at(-1)!;
}

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function clusterId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

export interface StartOptions {
  version?: string;
  /** Partitions of auto-created topics. */
  partitions?: number;
  /** Fixed client port instead of a free one. */
  port?: number;
  /**
   * For benchmarks: let the JVM use its optimizing compiler. Tests leave it off, which makes the
   * broker ready sooner, but the quick compiler alone costs Kafka several times its throughput.
   */
  fullJit?: boolean;
}

/**
 * Starts a single-node KRaft Kafka on loopback. Its ports are picked free, but Kafka binds them
 * only seconds later (after the controller's activation), when a test running alongside may have
 * taken one: such a start is tried again on fresh ports, up to three times in all.
 */
export async function startKafka(opts: StartOptions = {}): Promise<KafkaServer> {
  for (let attempt = 1;; attempt++) {
    try {
      return await startKafkaOnce(opts);
    } catch (err) {
      const taken = String(err).includes("Address already in use");
      if (!taken || attempt >= 3 || opts.port !== undefined) throw err;
    }
  }
}

async function startKafkaOnce(opts: StartOptions): Promise<KafkaServer> {
  const libs = await ensureKafkaJars(opts.version);
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-kafka-" });
  const port = opts.port ?? freePort();
  const controllerPort = freePort();
  const props = [
    "process.roles=broker,controller",
    "node.id=1",
    `controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    "controller.listener.names=CONTROLLER",
    "inter.broker.listener.name=PLAINTEXT",
    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    `log.dirs=${dir}/data`,
    `num.partitions=${opts.partitions ?? 3}`,
    "auto.create.topics.enable=true",
    "offsets.topic.replication.factor=1",
    // Fewer offsets partitions: the group coordinator is ready sooner after each start.
    "offsets.topic.num.partitions=3",
    "transaction.state.log.replication.factor=1",
    "transaction.state.log.min.isr=1",
    "share.coordinator.state.topic.replication.factor=1",
    "share.coordinator.state.topic.min.isr=1",
    "min.insync.replicas=1",
    "group.initial.rebalance.delay.ms=0",
    "log.flush.interval.messages=9223372036854775807",
  ];
  await Deno.writeTextFile(`${dir}/server.properties`, props.join("\n") + "\n");
  await Deno.writeTextFile(
    `${dir}/log4j2.properties`,
    [
      "rootLogger.level=WARN",
      "rootLogger.appenderRef.stdout.ref=STDOUT",
      "appender.stdout.type=Console",
      "appender.stdout.name=STDOUT",
      "appender.stdout.layout.type=PatternLayout",
      "appender.stdout.layout.pattern=[%d] %p %m (%c)%n",
    ].join("\n") + "\n",
  );
  const cp = `${libs}/*`;
  const extra = Deno.env.get("MQTTWK_KAFKA_JVM_FLAGS")?.split(/\s+/).filter(Boolean) ?? [];
  const jvm = [
    "-Xmx512m",
    "-Xms128m",
    // The JVM refuses two collectors: one named in the extra flags replaces this one.
    ...(extra.some((f) => /^-XX:\+Use\w+GC$/.test(f)) ? [] : ["-XX:+UseSerialGC"]),
    ...(opts.fullJit ? [] : ["-XX:TieredStopAtLevel=1"]),
    // Diagnostics (e.g. "-Xlog:gc:file=/tmp/kafka-gc.log"); later flags win over the ones above.
    ...extra,
    `-Dlog4j2.configurationFile=${dir}/log4j2.properties`,
    "-cp",
    cp,
  ];
  const format = await new Deno.Command("java", {
    args: [
      ...jvm,
      "kafka.tools.StorageTool",
      "format",
      // "=" form: a base64url id may start with "-", which would read as an option.
      `--cluster-id=${clusterId()}`,
      "-c",
      `${dir}/server.properties`,
      "--standalone",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!format.success) {
    const t = new TextDecoder();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw new Error(
      `kafka storage format failed:\n${t.decode(format.stdout)}${t.decode(format.stderr)}`,
    );
  }

  let text = "";
  let child: Deno.ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  const kill = () => {
    try {
      child?.kill("SIGKILL");
    } catch { /* gone */ }
  };
  // A test that dies half-way must not leave a JVM holding ports behind.
  globalThis.addEventListener("unload", kill);

  const launch = () => {
    const c = new Deno.Command("java", {
      args: [...jvm, "kafka.Kafka", `${dir}/server.properties`],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    child = c;
    const pump = async (s: ReadableStream<Uint8Array>) => {
      const d = new TextDecoder();
      for await (const chunk of s) text += d.decode(chunk, { stream: true });
    };
    exited = Promise.all([pump(c.stdout), pump(c.stderr), c.status]).then(() => {
      if (child === c) child = null;
    }, () => {});
  };

  const waitReady = async () => {
    const kafka = new Kafka({
      clientId: "mqttwk-kafka-probe",
      brokers: [`127.0.0.1:${port}`],
      logLevel: logLevel.NOTHING,
      retry: { retries: 0 },
      connectionTimeout: 1000,
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (true) {
      if (child === null) throw new Error(`kafka exited during start-up:\n${text}`);
      const admin = kafka.admin();
      try {
        await admin.connect();
        await admin.listTopics();
        // Metadata alone is served before the group coordinator is up; a consumer test then
        // stalls on "coordinator not available", so also wait for that.
        await admin.describeGroups(["mqttwk-probe"]);
        return;
      } catch (err) {
        if (Date.now() > deadline) {
          kill();
          throw new Error(`kafka not ready after ${READY_TIMEOUT_MS} ms (${err}):\n${text}`);
        }
        await new Promise((r) => setTimeout(r, 250));
      } finally {
        await admin.disconnect().catch(() => {});
      }
    }
  };

  const stop = async () => {
    const c = child;
    if (!c) return;
    try {
      c.kill("SIGTERM");
    } catch { /* gone */ }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((r) =>
      timer = setTimeout(() => r("timeout"), STOP_TIMEOUT_MS)
    );
    if (await Promise.race([exited, timeout]) === "timeout") {
      kill();
      await exited;
    }
    clearTimeout(timer);
  };

  launch();
  await waitReady();

  return {
    bootstrap: `127.0.0.1:${port}`,
    port,
    dir,
    running: () => child !== null,
    pid: () => (child as Deno.ChildProcess | null)?.pid ?? null,
    logs: () => text,
    stop,
    kill: async () => {
      if (!child) return;
      kill();
      await exited;
    },
    start: async () => {
      if (child) return;
      launch();
      await waitReady();
    },
    close: async () => {
      await stop();
      globalThis.removeEventListener("unload", kill);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
