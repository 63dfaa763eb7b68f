/**
 * Publishes the `$SYS` tree every `sysInterval` seconds, as the broker, through the normal
 * publish path: retained (a new subscriber gets the current values at once), QoS 0, to 3.1.1 and
 * 5.0 subscribers alike, held to the ACL like any delivery, and across the cluster. Like
 * Mosquitto it publishes a topic only when its value changed (so `version` goes out once, while
 * `uptime` changes every time).
 *
 * Alone, a node publishes `$SYS/broker/...`. In a cluster every node publishes its own figures
 * under `$SYS/nodes/<id>/...` and shares them through the cluster link; the live node with the
 * smallest id publishes the cluster's totals under `$SYS/broker/...`, once for the whole cluster,
 * so a subscriber on any node sees one consistent value per topic (see docs/cluster.md).
 */
import type { Core } from "./core.ts";
import type { SystemInfo } from "./options.ts";
import type { NodeSysStats } from "./ports/cluster.ts";
import type { LoadAverages } from "./sys_load.ts";
import {
  clusterValues,
  newLoad,
  nodeLevel,
  nodeValues,
  sysTopics,
  type SysValues,
} from "./sys_figures.ts";

const enc = new TextEncoder();

export class SysPublisher {
  readonly #core: Core;
  readonly #system: SystemInfo;
  readonly #startedAt = Date.now();
  readonly #load: LoadAverages = newLoad();
  #heapMax = 0;
  /** Most clients connected at once in the whole cluster, as far as this node has seen. */
  #clusterMax = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<void> | null = null;
  /** Payloads last published, by topic: a topic goes out again only when its value changes. */
  readonly #sent = new Map<string, string>();

  constructor(core: Core, system: SystemInfo) {
    this.#core = core;
    this.#system = system;
  }

  get #version(): string {
    return `mqttwk version ${this.#system.version}`;
  }

  /** Publishes once now, then every `sysInterval` seconds; nothing when the interval is 0. */
  start(): void {
    const seconds = this.#core.options.sysInterval;
    if (seconds <= 0) return;
    this.#tick();
    this.#timer = setInterval(() => this.#tick(), seconds * 1000);
  }

  /**
   * Stops publishing. A round still waiting for the cluster's figures is not awaited (shutdown
   * must not wait for a slow Redis); it publishes nothing once the broker is closing.
   */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    // A round still waiting for the cluster (Redis slow) is not overtaken by the next.
    if (this.#running !== null || this.#core.closing) return;
    this.#running = this.publishNow().catch((err) => {
      this.#core.log.warn(`$SYS: publishing failed: ${err?.message ?? err}`);
    }).finally(() => {
      this.#running = null;
    });
  }

  /** One round: this node's figures, and the cluster's when this node speaks for it. */
  async publishNow(): Promise<void> {
    const core = this.#core;
    const now = Date.now();
    const mine = nodeValues(core, Math.floor((now - this.#startedAt) / 1000), this.#load, now);
    const heapUsed = this.#system.heapUsed;
    if (heapUsed) {
      mine.heap = heapUsed();
      mine.heapMax = this.#heapMax = Math.max(this.#heapMax, mine.heap);
    }
    const cluster = core.cluster;
    if (!cluster?.shareSysStats) {
      this.#publishAll("$SYS/broker/", mine, this.#version);
      return;
    }
    const me = core.options.nodeId;
    this.#publishAll(`$SYS/nodes/${nodeLevel(me)}/`, mine, this.#version);
    const stats: NodeSysStats = { node: me, at: now, version: this.#version, values: mine };
    // Three intervals without news (and a few seconds' grace): that node is gone.
    const maxAgeMs = 3 * core.options.sysInterval * 1000 + 5000;
    const shared = await cluster.shareSysStats(stats, maxAgeMs);
    if (shared === undefined || core.closing) return;
    const live = shared.live.some((n) => n.node === me) ? shared.live : [...shared.live, stats];
    const total = clusterValues(live);
    this.#clusterMax = Math.max(this.#clusterMax, total.connected ?? 0, total.maximum ?? 0);
    // A sum of each node's maximum overstates what was connected at once: the cluster's own.
    total.maximum = this.#clusterMax;
    if (total.heapMax !== undefined) total.heapMax = Math.max(total.heapMax, total.heap ?? 0);
    const leader = live.reduce((a, n) => (n.node < a ? n.node : a), me);
    if (leader !== me) {
      // Another node speaks for the cluster; should this one take over, it says everything.
      this.#forget("$SYS/broker/");
      return;
    }
    const version = live.find((n) => n.node === leader)?.version ?? this.#version;
    this.#publishAll("$SYS/broker/", total, version);
    for (const node of shared.gone) this.#clearNode(node);
  }

  #publishAll(prefix: string, values: SysValues, version: string): void {
    for (const [suffix, payload] of sysTopics(values, version)) {
      const topic = prefix + suffix;
      if (this.#sent.get(topic) === payload) continue;
      this.#sent.set(topic, payload);
      this.#publish(topic, payload);
    }
  }

  /** A node that left: its retained `$SYS/nodes/<id>/...` topics are cleared. */
  #clearNode(node: string): void {
    const every: SysValues = { heap: 0 };
    newLoad().into(every);
    const prefix = `$SYS/nodes/${nodeLevel(node)}/`;
    for (const [suffix] of sysTopics(every, "")) {
      if (this.#core.retained.get(prefix + suffix) !== null) this.#publish(prefix + suffix, "");
    }
    this.#core.log.info(`$SYS: node ${node} stopped reporting; its $SYS/nodes topics cleared`);
  }

  #forget(prefix: string): void {
    for (const topic of this.#sent.keys()) if (topic.startsWith(prefix)) this.#sent.delete(topic);
  }

  /** As the broker: QoS 0, retained (an empty payload clears the topic). */
  #publish(topic: string, payload: string): void {
    const core = this.#core;
    const msg = core.messages.create(topic, enc.encode(payload), 0, true, "");
    const pending = core.publisher.publish(msg);
    if (pending) {
      pending.catch((err) => core.log.warn(`$SYS: ${topic}: ${err?.message ?? err}`));
    }
  }
}
