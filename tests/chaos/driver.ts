/**
 * The chaos suite's traffic: numbered publishers and persistent subscribers (mqtt.js, persistent
 * sessions, reconnecting by themselves), feeding an InvariantChecker. Any scenario — one node,
 * a cluster — points them at one or more broker addresses and breaks things in between.
 *
 * A publisher keeps `window` QoS 1/2 messages in flight at full speed, like a real client with
 * max-inflight; when the connection drops, mqtt.js keeps the unacknowledged ones and re-sends
 * them after it reconnects (PUBLISH with DUP, or PUBREL for those already PUBREC'd). That resend
 * is exactly what a broker must recognise after a crash.
 */
import mqtt from "mqtt";
import type { MqttClient } from "mqtt";
import { type InvariantChecker, messageKey } from "./invariants.ts";

const TRACE = Deno.env.get("MQTTWK_CHAOS_TRACE") === "1";

/** Where a client connects: one broker, or several tried in turn (a cluster). */
export type Target = { host: string; port: number } | { host: string; port: number }[];

function connectOptions(
  clientId: string,
  target: Target,
  protocolVersion: 4 | 5,
): mqtt.IClientOptions {
  const servers = Array.isArray(target) ? target : [target];
  return {
    clientId,
    protocolVersion,
    clean: false,
    // 5.0: the session outlives the connection (3.1.1 persistent sessions do by default).
    ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 3600 } } : {}),
    reconnectPeriod: 100,
    connectTimeout: 5_000,
    keepalive: 10,
    resubscribe: false,
    servers: servers.map((s) => ({ host: s.host, port: s.port })),
    host: servers[0].host,
    port: servers[0].port,
  };
}

/** A numbering publisher (see the module comment). */
export class ChaosPublisher {
  readonly id: string;
  readonly client: MqttClient;
  /** Messages published so far (the next seq). */
  sent = 0;
  /** Messages acknowledged so far. */
  acked = 0;
  /** Messages refused (an error in the publish callback, e.g. a 5.0 failure code). */
  refused = 0;
  #inflight = 0;
  #running = true;
  #limit: number;

  constructor(
    id: string,
    target: Target,
    readonly checker: InvariantChecker,
    readonly qos: 1 | 2,
    readonly window = 20,
    /** Stop after this many messages (default: until stop()). */
    limit = Infinity,
    protocolVersion: 4 | 5 = 4,
    /** Bytes of padding after the key (to fill a disk faster). */
    readonly padding = 0,
  ) {
    this.id = id;
    this.#limit = limit;
    this.client = mqtt.connect(connectOptions(id, target, protocolVersion));
    this.client.on("error", () => {/* reconnects by itself; the checker judges */});
    this.client.on("connect", () => this.#fill());
  }

  /** Whether every published message has been acknowledged (or refused). */
  get settled(): boolean {
    return this.#inflight === 0;
  }

  /** Stops publishing new messages; those in flight are still re-sent until acknowledged. */
  stop(): void {
    this.#running = false;
  }

  #fill(): void {
    while (
      this.#running && this.#inflight < this.window && this.sent < this.#limit &&
      this.client.connected
    ) {
      const seq = this.sent++;
      this.#inflight++;
      const payload = messageKey(this.id, seq) +
        (this.padding ? " " + "x".repeat(this.padding) : "");
      this.client.publish(`chaos/${this.id}`, payload, { qos: this.qos }, (e) => {
        this.#inflight--;
        if (e) this.refused++;
        else {
          this.acked++;
          this.checker.acked(this.id, seq);
        }
        this.#fill();
      });
    }
  }

  /** Closes the client (what is unacknowledged stays unacknowledged). */
  async end(): Promise<void> {
    this.#running = false;
    await this.client.endAsync(true);
  }
}

/** A persistent subscriber to `chaos/#` handing every message to the checker. */
export class ChaosSubscriber {
  readonly client: MqttClient;
  /** With MQTTWK_CHAOS_TRACE=1: how each message arrived (packet id, DUP, time). */
  readonly trace = new Map<string, string[]>();
  count = 0;
  #subscribed: Promise<void>;

  constructor(
    id: string,
    target: Target,
    readonly checker: InvariantChecker,
    qos: 1 | 2,
    protocolVersion: 4 | 5 = 4,
    /** What it subscribes to (default every chaos publisher). */
    filter: string | string[] = "chaos/#",
  ) {
    this.client = mqtt.connect(connectOptions(id, target, protocolVersion));
    this.client.on("error", () => {});
    this.client.on("message", (_t, payload, packet) => {
      this.count++;
      if (TRACE) {
        const k = new TextDecoder().decode(payload);
        const l = this.trace.get(k) ?? [];
        l.push(`pid=${packet.messageId} dup=${packet.dup} t=${Date.now() % 1000000}`);
        this.trace.set(k, l);
      }
      checker.received(new TextDecoder().decode(payload));
    });
    this.#subscribed = new Promise((resolve, reject) => {
      this.client.once("connect", (ack) => {
        // A resumed session keeps its subscription; a new one subscribes once.
        if (ack.sessionPresent) return resolve();
        this.client.subscribe(filter, { qos }, (e) => e ? reject(e) : resolve());
      });
    });
  }

  /** Resolves once the subscription exists (subscribe before publishing). */
  ready(): Promise<void> {
    return this.#subscribed;
  }

  async end(): Promise<void> {
    await this.client.endAsync(true);
  }
}

/** How a drain ended. */
export interface DrainResult {
  /** Everything settled and nothing acknowledged is missing. */
  complete: boolean;
  /** Gave up because nothing moved for `stallMs` (stuck), rather than at the overall cap. */
  stalled: boolean;
  ms: number;
  /** Acknowledged messages still missing at the end. */
  missing: number;
}

/**
 * Waits until every publisher has settled and the subscriber(s) have everything acknowledged.
 * A backlog queued for a slow subscriber may take minutes to drain after a long run (QoS 2
 * costs two commits per delivery), so the wait is not a fixed time: it goes on while messages
 * keep arriving or being acknowledged, and gives up only when nothing moved for `stallMs` (the
 * rest is stuck, i.e. lost unless a later look finds it) or after `capMs` in all. Prints its
 * progress every 10 s.
 */
export async function drain(
  publishers: (ChaosPublisher | PahoPublisher)[],
  checker: InvariantChecker,
  stallMs = 60_000,
  capMs = 15 * 60_000,
): Promise<DrainResult> {
  for (const p of publishers) p.stop();
  const started = Date.now();
  let lastMove = started;
  let lastMissing = -1;
  let lastAcked = -1;
  let lastPrint = started;
  for (;;) {
    const now = Date.now();
    const missing = checker.missing();
    const settled = publishers.every((p) => p.settled);
    if (settled && missing === 0) {
      // Late duplicates (a resend in flight) would arrive now: a short grace to count them.
      await new Promise((r) => setTimeout(r, 500));
      return { complete: true, stalled: false, ms: Date.now() - started, missing: 0 };
    }
    if (missing !== lastMissing || checker.ackedCount !== lastAcked) {
      lastMissing = missing;
      lastAcked = checker.ackedCount;
      lastMove = now;
    }
    if (now - lastPrint >= 10_000) {
      lastPrint = now;
      console.log(
        `chaos ${checker.scenario}: draining for ${Math.round((now - started) / 1000)} s, ` +
          `${missing} acknowledged message(s) not received yet, publishers ` +
          `${settled ? "settled" : "still resending"}`,
      );
    }
    const stalled = now - lastMove >= stallMs;
    if (stalled || now - started >= capMs) {
      return { complete: false, stalled, ms: now - started, missing };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The same numbering publisher in Eclipse Paho (Python, /usr/bin/python3): Paho queues ahead and
 * re-sends its unacknowledged messages after every reconnect with their original packet ids, the
 * way the fault-injection test found QoS 2 duplicates.
 */
export class PahoPublisher {
  readonly id: string;
  acked = 0;
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #done: Promise<void>;
  #finished = false;

  constructor(
    id: string,
    target: { host: string; port: number },
    checker: InvariantChecker,
    qos: 1 | 2,
  ) {
    this.id = id;
    const child = this.#child = new Deno.Command("/usr/bin/python3", {
      args: [
        new URL("./paho_publisher.py", import.meta.url).pathname,
        target.host,
        String(target.port),
        id,
        String(qos),
        ...(TRACE ? [`/tmp/paho-${id}.log`] : []),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#stdin = child.stdin.getWriter();
    this.#done = (async () => {
      let rest = "";
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        const lines = (rest + chunk).split("\n");
        rest = lines.pop()!;
        for (const line of lines) {
          if (line === "DONE") this.#finished = true;
          else if (line.startsWith("A ")) {
            for (const s of line.slice(2).split(",")) {
              this.acked++;
              checker.acked(id, Number(s));
            }
          }
        }
      }
    })();
  }

  /** Whether the script has stopped and seen everything acknowledged. */
  get settled(): boolean {
    return this.#finished;
  }

  /** No new messages; the script exits once the rest is acknowledged. */
  stop(): void {
    this.#stdin.write(new TextEncoder().encode("stop\n")).catch(() => {});
  }

  async end(): Promise<void> {
    this.stop();
    try {
      this.#child.kill("SIGKILL");
    } catch { /* already exited */ }
    await this.#child.status;
    await this.#done.catch(() => {});
    await this.#stdin.close().catch(() => {});
  }
}
