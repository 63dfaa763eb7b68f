/**
 * MqttWk entry point: configuration, store, broker core, listeners, signals.
 */
import { ConfigError, HelpRequested, loadConfig } from "./src/config/load.ts";
import type { Config } from "./src/config/load.ts";
import { Broker } from "./src/broker/broker.ts";
import { brokerOptionsFrom } from "./src/config/broker_options.ts";
import { createLogger, type Logger } from "./src/log.ts";
import { MemoryStore } from "./src/store/memory.ts";
import { SqliteStore } from "./src/store/sqlite.ts";
import type { Store } from "./src/broker/ports/store.ts";
import { type Listeners, startListeners } from "./src/transport/listeners.ts";
import { listenerSettings } from "./src/transport/settings.ts";
import { createSecurity } from "./src/auth/mod.ts";
import type { KafkaBridge } from "./src/bridge/kafka/mod.ts";
import type { ClusterLink } from "./src/broker/ports/cluster.ts";
import { type HealthSource, listenMetrics } from "./src/metrics/http.ts";

function openFileLimit(): number | null {
  try {
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const m = limits.match(/Max open files\s+(\d+)/);
    if (m) return Number(m[1]);
  } catch {
    // Deno lets only --allow-all read /proc/self; a child shell inherits the same limit.
  }
  try {
    const out = new Deno.Command("sh", { args: ["-c", "ulimit -n"], stderr: "null" }).outputSync();
    const n = Number(new TextDecoder().decode(out.stdout).trim());
    return Number.isSafeInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** The node id from config, else the one kept in the data directory, else a new one kept there. */
function resolveNodeId(config: Config, log: Logger): string {
  if (config.nodeId) return config.nodeId;
  const random = () => `${config.brokerId}-${crypto.randomUUID().slice(0, 8)}`;
  if (config.persistence !== "sqlite") return random();
  const file = `${config.dataDir}/node-id`;
  try {
    const id = Deno.readTextFileSync(file).trim();
    if (id) return id;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const id = random();
  Deno.mkdirSync(config.dataDir, { recursive: true });
  Deno.writeTextFileSync(file, id + "\n");
  log.info(`generated node id ${id} (kept in ${file})`);
  return id;
}

function storageSummary(config: Config): string {
  if (config.clusterOn) {
    const where = config.redisMode === "cluster"
      ? `Redis Cluster ${config.redisNodes}`
      : `Redis ${config.redisHost}:${config.redisPort}`;
    return `cluster over ${where}`;
  }
  if (config.persistence === "sqlite") {
    return `persistence sqlite in ${config.dataDir}, durability ${config.durability}`;
  }
  return "persistence memory";
}

export async function main(args: string[]): Promise<number> {
  let config: Config;
  let warnings: string[];
  try {
    ({ config, warnings } = loadConfig({ args, env: Deno.env.toObject() }));
  } catch (err) {
    if (err instanceof HelpRequested) {
      console.log(err.message);
      return 0;
    }
    if (err instanceof ConfigError) {
      console.error(`mqttwk: configuration error: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  // Registered before anything listens, so a SIGTERM right after start-up is still graceful.
  const { promise: stopped, resolve: stop } = Promise.withResolvers<string>();
  const onSignal = (name: string) => () => stop(name);
  Deno.addSignalListener("SIGINT", onSignal("SIGINT"));
  Deno.addSignalListener("SIGTERM", onSignal("SIGTERM"));
  for (const w of warnings) log.warn(w);

  const nodeId = resolveNodeId(config, log);
  let store: Store;
  let cluster: ClusterLink | undefined;
  if (config.clusterOn) {
    // The cluster shares one store: sessions, queues and retained messages live in Redis.
    // Loaded only when used: ioredis and kafkajs would otherwise add ~15 MB to every broker.
    const { createRedisCluster } = await import("./src/cluster/mod.ts");
    ({ store, cluster } = createRedisCluster(config, log));
  } else if (config.persistence === "sqlite") {
    store = new SqliteStore({
      dir: config.dataDir,
      durability: config.durability,
      commitIntervalMs: config.commitIntervalMs,
      logger: log,
    });
  } else {
    store = new MemoryStore();
  }

  const fileLimit = openFileLimit();
  let maxConnections = config.maxConnections;
  if (fileLimit !== null && maxConnections > fileLimit - 400) {
    // Leave room for listeners, store, Redis/Kafka clients, workers and up to 100 connections
    // being refused with CONNACK 0x03: refusing cleanly beats EMFILE.
    maxConnections = Math.max(1, fileLimit - 400);
    log.warn(
      `max-connections ${config.maxConnections} exceeds the open-file limit ${fileLimit}; ` +
        `using ${maxConnections}`,
    );
  }

  let security;
  try {
    security = await createSecurity(config, log);
  } catch (err) {
    log.error(`cannot start: ${(err as Error).message}`);
    return 1;
  }

  let kafka: KafkaBridge | null = null;
  try {
    if (config.kafkaEnabled) {
      const { createKafkaBridge } = await import("./src/bridge/kafka/mod.ts");
      kafka = createKafkaBridge(config, log);
    }
  } catch (err) {
    log.error(`cannot start: ${(err as Error).message}`);
    return 1;
  }

  const broker = new Broker({
    options: brokerOptionsFrom(config, nodeId, maxConnections),
    store,
    log,
    authenticator: security.authenticator,
    authorizer: security.authorizer,
    admit: security.admit,
    sinks: kafka ? [kafka.sink] : [],
    events: kafka?.events,
    cluster,
  });

  try {
    await broker.start();
  } catch (err) {
    log.error(`cannot start: ${(err as Error).message}`);
    return 1;
  }

  if (kafka) await kafka.start(broker);

  let listeners: Listeners;
  try {
    listeners = startListeners(
      listenerSettings(config),
      (conn) => void broker.handleConnection(conn),
      log,
    );
    await listeners.ready;
  } catch (err) {
    log.error(`cannot listen: ${(err as Error).message}`);
    await broker.close();
    return 1;
  }
  let metrics: { close(): void } | undefined;
  if (config.httpEnabled) {
    const sources: HealthSource[] = [];
    if (cluster) {
      const link = cluster;
      sources.push({ name: "cluster", healthy: () => link.healthy !== false, metrics: () => ({}) });
    }
    if (kafka) {
      const bridge = kafka;
      sources.push({
        name: "kafka",
        healthy: () => bridge.stats().connected,
        metrics: () => {
          const st = bridge.stats();
          return {
            produced_total: st.produced,
            dropped_total: st.dropped,
            rejected_total: st.rejected,
            buffered: st.buffered,
            buffered_bytes: st.bufferedBytes,
          };
        },
      });
    }
    try {
      metrics = listenMetrics(
        { hostname: config.httpHost, port: config.httpPort },
        broker,
        sources,
        log,
      );
    } catch (err) {
      log.error(`cannot listen: server.port ${config.httpPort}: ${(err as Error).message}`);
      listeners.close();
      await broker.close();
      return 1;
    }
  }

  log.info(
    `mqttwk ${config.brokerId} started (node ${nodeId}, ${storageSummary(config)}` +
      `, connection limit ${maxConnections}` +
      (fileLimit !== null ? `, open-file limit ${fileLimit}` : "") + `, config ${config.source})`,
  );

  Deno.addSignalListener("SIGHUP", () => {
    log.info("SIGHUP received: reloading certificates, passwords and ACLs");
    listeners.reload();
    Promise.resolve(security.reload()).then(
      () => {
        // Subscriptions made under the old rules are held to the new ones, as new ones would be.
        const dropped = broker.reauthorizeAll();
        if (dropped > 0) log.info(`${dropped} subscription(s) dropped under the reloaded ACL`);
      },
      (err) => log.error(`reload failed, keeping the previous settings: ${(err as Error).message}`),
    );
  });
  const signal = await stopped;
  log.info(`${signal} received: shutting down`);
  listeners.close();
  metrics?.close();
  // No Kafka record may reach a broker whose store is closing.
  if (kafka) await kafka.stopIngress();
  await broker.close();
  if (kafka) await kafka.stop();
  log.info("stopped");
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
