/**
 * The broker process as an object: wires the configuration into node id, store, security,
 * cluster, Kafka bridge, broker core, listeners and metrics, and takes them down again.
 * main.ts runs one and maps signals onto it; tests run it in-process.
 */
import { Broker } from "../broker/broker.ts";
import { brokerOptionsFrom } from "../config/broker_options.ts";
import type { Config } from "../config/load.ts";
import { createLogger, type Logger } from "../log.ts";
import type { KafkaBridge } from "../bridge/kafka/mod.ts";
import type { Listening } from "../transport/tcp.ts";
import type { Front, Guard } from "../transport/listening.ts";
import { SocketBudget } from "../transport/socket_budget.ts";
import { type DescriptorWatch, watchDescriptors } from "../transport/descriptor_watch.ts";
import { bridgeHealth, createBridge } from "./bridge.ts";
import { clusterAdmin, clusterHealth } from "./cluster.ts";
import { type StoreHealth, watchStore } from "./disk.ts";
import { connectionBudget } from "./connection_budget.ts";
import { type Listeners, openListeners } from "./listeners.ts";
import { type HealthSource, type HealthView, healthView } from "./metrics.ts";
import { type HttpSide, serveHttp } from "./http.ts";
import { resolveNodeId } from "./node_id.ts";
import { createSecurity, reloadSecurity, type Security } from "./security.ts";
import { chooseStore, storageSummary } from "./store.ts";
import { checkDataDir, usesDataDir } from "./data_dir.ts";
import type { Store } from "../broker/ports/store.ts";
import { SqliteStore } from "../store/sqlite.ts";
import { threadMemory } from "../store/sqlite_protocol.ts";
import { startIdleGc } from "../idle_gc.ts";
import { MQTTWK_VERSION } from "../version.ts";

export type { HealthView } from "./metrics.ts";

/** Options for createApp. */
export interface AppOptions {
  /** Where the app logs; by default a console logger at the configured `log-level`. */
  log?: Logger;
}

/** start() failed; the reason was already logged as "cannot start: …" or "cannot listen: …". */
export class StartFailed extends Error {
  override name = "StartFailed";
}

/** One broker with everything around it, started and stopped as a unit. */
export interface App {
  readonly config: Config;
  readonly log: Logger;
  /** The broker core (stats, sessions); throws before start() has built it. */
  readonly broker: Broker;
  /** This node's id; throws before start() has chosen it. */
  readonly nodeId: string;
  /** The connection limit in force, after the open-file limit was taken into account. */
  readonly maxConnections: number;
  /** The HTTP port (/metrics, /health, API, dashboard) while it is being served. */
  readonly metrics: Listening | undefined;
  /**
   * The bound MQTT listeners, with real ports where 0 was configured; empty before start()
   * and after stop().
   */
  listening(): readonly Listening[];
  /** What /health would answer. */
  health(): HealthView;
  /**
   * Starts everything and resolves once every listener is bound. Rejects with StartFailed
   * (already logged) when the configuration cannot be served; whatever had started is closed.
   */
  start(): Promise<void>;
  /**
   * What SIGHUP does: re-reads certificates, passwords and ACLs, then drops subscriptions the
   * new ACL forbids. Resolves false (logged) when the files could not be loaded.
   */
  reload(): Promise<boolean>;
  /** Closes listeners, metrics, the Kafka bridge, every connection and the store. Idempotent. */
  stop(): Promise<void>;
  /** Where this process's memory is, for diagnosing growth (see MQTTWK_MEMORY_REPORT). */
  memory(): Promise<MemoryReport>;
}

/** This thread's isolate and, with the SQLite store, what its worker and SQLite hold. */
export interface MemoryReport {
  main: Deno.MemoryUsage;
  /** `main` after a full collection, when --v8-flags=--expose-gc allows one. */
  mainLive?: Deno.MemoryUsage;
  store?: Awaited<ReturnType<SqliteStore["memory"]>>;
}

/** Builds an app from a loaded configuration; nothing runs until start(). */
export function createApp(config: Config, opts: AppOptions = {}): App {
  return new MqttwkApp(config, opts.log ?? createLogger(config.logLevel));
}

class MqttwkApp implements App {
  #broker?: Broker;
  #store?: Store;
  #stopIdleGc?: () => void;
  #nodeId?: string;
  #maxConnections = 0;
  #security?: Security;
  #kafka: KafkaBridge | null = null;
  #listeners?: Listeners;
  #metrics?: Front;
  #http?: HttpSide;
  #watch?: DescriptorWatch;
  #sources: HealthSource[] = [];
  #storeWatch?: StoreHealth;
  #started = false;
  #running = false;
  #stopping?: Promise<void>;

  constructor(readonly config: Config, readonly log: Logger) {}

  get broker(): Broker {
    if (!this.#broker) throw new Error("the app has not been started");
    return this.#broker;
  }

  get nodeId(): string {
    if (this.#nodeId === undefined) throw new Error("the app has not been started");
    return this.#nodeId;
  }

  get maxConnections(): number {
    return this.#maxConnections;
  }

  get metrics(): Listening | undefined {
    return this.#metrics;
  }

  listening(): readonly Listening[] {
    return this.#running ? this.#listeners?.all ?? [] : [];
  }

  health(): HealthView {
    return healthView(this.broker, this.#sources);
  }

  async memory(): Promise<MemoryReport> {
    const { thread: main, live: mainLive } = threadMemory();
    const store = this.#store instanceof SqliteStore ? await this.#store.memory() : undefined;
    return { main, mainLive, store };
  }

  async start(): Promise<void> {
    if (this.#started) throw new Error("an app starts once; create a new one");
    this.#started = true;
    const { config, log } = this;
    const { maxConnections, socketBudget, fileLimit } = await this.#orFail(
      "cannot start",
      () => connectionBudget(config, log),
    );
    this.#maxConnections = maxConnections;
    if (usesDataDir(config)) {
      await this.#orFail("cannot start", () => checkDataDir(config.dataDir));
    }
    const nodeId = this.#nodeId = resolveNodeId(config, log);
    const { store, cluster } = await chooseStore(config, log);
    this.#store = store;

    const security = this.#security = await this.#orFail(
      "cannot start",
      () => createSecurity(config, log),
    );
    const kafka = this.#kafka = await this.#orFail("cannot start", () => createBridge(config, log));
    const onDisk = config.persistence === "sqlite" && !config.clusterOn;
    const storeWatch = this.#storeWatch = watchStore(
      store,
      onDisk ? config.dataDir : null,
      config.diskFreeWarnBytes,
      log,
    );
    this.#sources.push(storeWatch.source);
    if (cluster) this.#sources.push(clusterHealth(cluster));
    if (kafka) this.#sources.push(bridgeHealth(kafka));

    const broker = this.#broker = new Broker({
      options: brokerOptionsFrom(config, nodeId, maxConnections),
      store,
      log,
      authenticator: security.authenticator,
      authorizer: security.authorizer,
      enhancedAuthenticator: security.enhancedAuthenticator,
      admit: security.admit,
      sinks: kafka ? [kafka.sink] : [],
      events: kafka?.events,
      cluster,
      system: { version: MQTTWK_VERSION, heapUsed: () => Deno.memoryUsage().heapUsed },
    });
    await this.#orFail("cannot start", () => broker.start());
    if (kafka) await kafka.start(broker);

    const watch = this.#watch = watchDescriptors(
      () => [...(this.#listeners?.all ?? []), ...(this.#metrics ? [this.#metrics] : [])],
      log,
    );
    const guard: Guard = {
      budget: new SocketBudget(socketBudget, log),
      alert: () => watch.alert(),
    };
    this.#listeners = await this.#orFail(
      "cannot listen",
      () => openListeners(config, broker, log, guard),
      () => this.#teardown(),
    );
    this.#http = await this.#orFail(
      `cannot serve http (server.port ${config.httpPort})`,
      () =>
        serveHttp(config, {
          broker,
          sources: this.#sources,
          listening: () => this.listening(),
          reload: () => this.reload(),
          clusterHealthy: cluster ? () => cluster.healthy !== false : undefined,
          kafkaHealthy: kafka ? () => kafka.stats().connected : undefined,
          gather: cluster ? (local) => clusterAdmin(config, nodeId, local, log) : undefined,
          guard,
        }, log),
      () => this.#teardown(),
    );
    this.#metrics = this.#http?.front;
    this.#running = true;
    this.#stopIdleGc = startIdleGc();

    log.info(
      `mqttwk ${config.brokerId} started (node ${nodeId}, ${storageSummary(config)}` +
        `, connection limit ${maxConnections}, socket limit ${socketBudget}` +
        (fileLimit !== null ? `, open-file limit ${fileLimit}` : "") + `, config ${config.source})`,
    );
  }

  reload(): Promise<boolean> {
    if (!this.#running) return Promise.reject(new Error("the app is not running"));
    this.#listeners!.reload();
    const http = this.#http?.auth.reload().then(() => true, (err) => {
      this.log.error(`http: reload failed, keeping the previous keys: ${err?.message ?? err}`);
      return false;
    });
    return reloadSecurity(this.#security!, this.broker, this.log).then(async (ok) =>
      (await (http ?? true)) && ok
    );
  }

  stop(): Promise<void> {
    if (!this.#running) return this.#stopping ?? Promise.resolve();
    this.#running = false;
    this.#stopping = this.#teardown().then(() => this.log.info("stopped"));
    return this.#stopping;
  }

  /** Runs one start-up step; on failure logs "<what>: <reason>", undoes, throws StartFailed. */
  async #orFail<T>(what: string, step: () => T | Promise<T>, undo?: () => Promise<void>) {
    try {
      return await step();
    } catch (err) {
      const message = `${what}: ${(err as Error).message}`;
      this.log.error(message);
      await undo?.();
      throw new StartFailed(message, { cause: err });
    }
  }

  async #teardown(): Promise<void> {
    this.#stopIdleGc?.();
    this.#storeWatch?.stop();
    this.#watch?.close();
    this.#listeners?.close();
    await this.#http?.close();
    this.#metrics = undefined;
    this.#http = undefined;
    // No Kafka record may reach a broker whose store is closing.
    if (this.#kafka) await this.#kafka.stopIngress();
    await this.#broker?.close();
    if (this.#kafka) await this.#kafka.stop();
  }
}
