/**
 * The load of the cluster chaos scenarios: mqtt.js publishers and subscribers with persistent
 * sessions that fail over between nodes (the `servers` list, as behind a load balancer), fed
 * into a ClusterChecker. Bounded for CI; MQTTWK_CHAOS_LONG=1 makes every scenario longer and
 * larger (for the bench machine).
 */
import mqtt from "mqtt";
import type { MqttClient } from "mqtt";
import { type RedisServer, startRedis, testPrefix } from "../helpers/redis.ts";
import { waitFor } from "../helpers/wait.ts";
import { type NodeProcess, spawnNode } from "../cluster/nodes.ts";
import type { ClusterChecker } from "./cluster_checker.ts";

/** The opt-in long run. */
export const LONG = Deno.env.get("MQTTWK_CHAOS_LONG") === "1";

/** Three nodes over one Redis (appendonly yes) with `timeoutS` node-timeout. */
export interface ChaosCluster {
  redis: RedisServer;
  nodes: NodeProcess[];
  redisArgs: string[];
  stop(): Promise<void>;
}

export async function startChaosCluster(
  timeoutS: number,
  env: Record<string, string> = {},
): Promise<ChaosCluster> {
  const redis = await startRedis({ aof: true });
  const redisArgs = [
    `--redis.port=${redis.port}`,
    `--redis.key-prefix=${testPrefix("chaos")}`,
  ];
  // Queues large enough for the backlog: a dropped message would hide a real loss.
  const extra = [
    `--mqttwk.broker.cluster.node-timeout=${timeoutS}`,
    "--mqttwk.broker.max-queued-messages=250000",
  ];
  const nodes = await Promise.all(
    ["n1", "n2", "n3"].map((id) => spawnNode(id, redisArgs, extra, env)),
  );
  return {
    redis,
    nodes,
    redisArgs,
    stop: async () => {
      for (const n of nodes) await n.kill();
      await redis.kill();
    },
  };
}

function serversOf(nodes: NodeProcess[]) {
  return nodes.map((n) => ({ host: "127.0.0.1", port: n.port }));
}

/** A persistent publisher numbering its messages, `window` of them in flight. */
export class ChaosPublisher {
  readonly client: MqttClient;
  seq = 0;
  inflight = 0;
  #running = true;
  #loop: Promise<void>;

  constructor(
    readonly name: string,
    nodes: NodeProcess[],
    readonly topic: string,
    readonly qos: 1 | 2,
    checker: ClusterChecker,
    window = 10,
    /** Stop after this many messages (default: until stop()). */
    readonly limit = Infinity,
  ) {
    const client = this.client = mqtt.connect({
      servers: serversOf(nodes),
      clientId: name,
      clean: false,
      protocolVersion: 4,
      reconnectPeriod: 100,
      connectTimeout: 30_000,
      keepalive: 30,
    });
    this.client.on("error", () => {});
    this.#loop = (async () => {
      while (this.#running && this.seq < this.limit) {
        if (this.inflight >= window) {
          await new Promise((r) => setTimeout(r, 2));
          continue;
        }
        const seq = ++this.seq;
        this.inflight++;
        client.publish(this.topic, `${name}:${seq}`, { qos }, (err) => {
          this.inflight--;
          if (!err) checker.acked(name, seq);
        });
      }
    })();
  }

  /** Stops publishing and waits (up to `timeoutMs`) until every message was acknowledged. */
  async stop(timeoutMs = 60_000): Promise<void> {
    this.#running = false;
    await this.#loop;
    await waitFor(() => this.inflight === 0, {
      what: `${this.name}'s last acknowledgements`,
      timeout: timeoutMs,
      interval: 20,
      detail: () => `${this.inflight} in flight`,
    });
  }

  /** Waits until it published everything (`limit`). */
  async finished(): Promise<void> {
    await this.#loop;
  }

  close(): Promise<void> {
    this.#running = false;
    return this.client.endAsync(true).then(() => {}, () => {});
  }
}

/** A persistent subscriber to `filter`, reporting to the checker. */
export class ChaosSubscriber {
  client: MqttClient | null = null;
  /** CONNACKs without session present after the first (a persistent session was lost). */
  sessionsLost = 0;
  connects = 0;
  /** When the last CONNACK came (performance.now()). */
  lastConnack = 0;
  /** Longest time from a lost connection to the next CONNACK (ms). */
  longestGap = 0;
  #closedAt: number | null = null;
  #subscribed = false;

  constructor(
    readonly name: string,
    readonly filter: string,
    readonly checker: ClusterChecker,
  ) {}

  /** Connects to `nodes` (the first, then the next on each reconnect); resolves on CONNACK. */
  connect(nodes: NodeProcess[]): Promise<void> {
    const c = this.client = mqtt.connect({
      servers: serversOf(nodes),
      clientId: this.name,
      clean: false,
      protocolVersion: 4,
      reconnectPeriod: 100,
      connectTimeout: 30_000,
      keepalive: 30,
    });
    c.on("error", () => {});
    c.on("message", (_t, payload) => this.checker.receivedPayload(this.name, payload.toString()));
    const { promise, resolve } = Promise.withResolvers<void>();
    c.on("close", () => this.#closedAt ??= performance.now());
    c.on("connect", (ack) => {
      this.connects++;
      this.lastConnack = performance.now();
      if (this.#closedAt !== null) {
        this.longestGap = Math.max(this.longestGap, this.lastConnack - this.#closedAt);
        this.#closedAt = null;
      }
      if (!this.#subscribed) {
        this.#subscribed = true;
        c.subscribe(this.filter, { qos: 1 }, () => resolve());
        return;
      }
      if (!ack.sessionPresent) {
        this.sessionsLost++;
        c.subscribe(this.filter, { qos: 1 });
      }
      resolve();
    });
    return promise;
  }

  /** Disconnects, keeping the session (messages queue for it meanwhile). */
  async disconnect(): Promise<void> {
    await this.client?.endAsync().catch(() => {});
    this.client = null;
    this.#closedAt = null;
  }

  /** Waits until nothing acknowledged is missing; false if that did not happen in time. */
  async caughtUp(timeoutMs: number): Promise<boolean> {
    try {
      await waitFor(() => this.checker.missing(this.name) === 0, {
        what: `${this.name} to receive everything acknowledged`,
        timeout: timeoutMs,
        interval: 100,
      });
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.client?.endAsync(true).catch(() => {});
  }
}
