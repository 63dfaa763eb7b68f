/**
 * conn-cluster: idle connection capacity of a 3-node MqttWk cluster on this machine.
 *
 *   deno run -A bench/cluster_conn.ts [--connections 50000] [--concurrency 64] [--no-limit-check]
 *   deno task bench --scenarios conn-cluster --brokers mqttwk [--connections 3000]
 *
 * Starts a throw-away redis-server (free port, temp dir, no persistence) and 3 MqttWk nodes in
 * cluster mode (`--persistence memory --log-level warn`, websocket off, max-connections 19,500
 * each), then one generator subprocess per node (bench/conn_worker.ts: a process holds fewer
 * than 20,000 sockets) that opens its share of the connections to that node: clean session,
 * keepalive 0, unique client ids, source addresses 127.0.x.y, each waiting for CONNACK 0x00.
 * Reports per node and in total: connections, time to connect, connect rate, broker RSS per
 * connection (VmRSS delta over the baseline / count), peak RSS, refusals and errors. Keeps the
 * connections idle for ~2 s, checks every node is alive and accepts a fresh CONNECT, closes
 * everything and stops the nodes and Redis.
 *
 * Before that, once: a node with max-connections=100 receiving 120 connects must state its limit
 * at start-up, answer the 20 extra ones with CONNACK 0x03, keep the 100 and stay up (PASS/FAIL).
 */

import { parseArgs } from "node:util";
import { BenchConn, sleep } from "./client.ts";
import { cpuSeconds, freePort, memoryKiB, START_V8_FLAGS, systemBusySeconds } from "./brokers.ts";
import { ConnectionSet } from "./conn_worker.ts";
import { emptyResult, type RunResult } from "./scenarios.ts";
import { fmtNum, fmtSig, table } from "./stats.ts";
import { type RedisServer, startRedis } from "../tests/helpers/redis.ts";

export const CLUSTER_NODES = 3;
/** --mqttwk.broker.max-connections of every node. */
export const NODE_MAX_CONNECTIONS = 19_500;
/** What one generator process can hold under the 20,000 open-file limit, with some room. */
const MAX_PER_WORKER = 19_400;
export const MAX_CLUSTER_CONNECTIONS = CLUSTER_NODES * MAX_PER_WORKER;
export const DEFAULT_CLUSTER_CONNECTIONS = 50_000;

/** Connecting stops after this long; the whole scenario stays under ~3 minutes. */
const CONNECT_PHASE_S = 130;
const IDLE_MS = 2000;

const REPO_ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const WORKER = new URL("./conn_worker.ts", import.meta.url).pathname;

export interface ConnClusterOptions {
  /** Total idle connections over all nodes. */
  connections: number;
  /** Connects in flight per generator process. */
  concurrency?: number;
  /** Run the max-connections=100 check first (default true). */
  limitCheck?: boolean;
  scenario?: string;
  round?: number;
  /** Progress lines (default console.error). */
  progress?: (line: string) => void;
}

export interface NodeReport {
  node: string;
  port: number;
  target: number;
  connected: number;
  failed: number;
  refused: Record<string, number>;
  errors: Record<string, number>;
  connectSeconds: number;
  connectRate: number;
  rssBaselineMiB: number;
  rssAfterMiB: number;
  rssPerConnKiB: number;
  peakRssMiB: number;
  cpuPct: number;
  openAfterIdle: number;
  closedByBroker: number;
  aliveAfterIdle: boolean;
  freshConnect: string;
  exitCode: number | null;
}

export interface LimitCheck {
  pass: boolean;
  checks: { what: string; ok: boolean; detail: string }[];
}

export interface ConnClusterOutcome {
  result: RunResult;
  nodes: NodeReport[];
  limit: LimitCheck | null;
  /** Broker log lines at WARN/ERROR or crashes, grouped. */
  brokerProblems: string[];
  text: string;
}

// ------------------------------------------------------------------ processes

/** Kill switches of everything started here, used on exit so nothing is orphaned. */
const live = new Set<() => void>();
globalThis.addEventListener("unload", () => {
  for (const k of live) k();
});

/** Stops (SIGKILL) every process this module started; for signal handlers. */
export function killAll(): void {
  for (const k of live) k();
}

interface NodeProc {
  id: string;
  port: number;
  pid: number;
  exited: () => boolean;
  exitCode: () => number | null;
  log: () => string;
  stop: (timeoutMs?: number) => Promise<number | null>;
}

const LOG_CAP = 1 << 20;

async function startNode(
  id: string,
  redisPort: number,
  maxConnections: number,
  logLevel: "warn" | "info",
  keyPrefix = "mqttwk:",
): Promise<NodeProc> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      ...START_V8_FLAGS,
      "main.ts",
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
      "--persistence",
      "memory",
      "--mqttwk.broker.websocket-enabled=false",
      "--log-level",
      logLevel,
      "--mqttwk.broker.cluster-on=true",
      "--redis.host",
      "127.0.0.1",
      "--redis.port",
      String(redisPort),
      `--redis.key-prefix=${keyPrefix}`,
      "--node-id",
      id,
      `--mqttwk.broker.max-connections=${maxConnections}`,
    ],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  };
  live.add(kill);
  let text = "";
  let dropped = 0;
  const drain = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    try {
      for await (const chunk of s) {
        if (text.length < LOG_CAP) text += dec.decode(chunk, { stream: true });
        else dropped += chunk.length;
      }
    } catch { /* closed */ }
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  let exited = false;
  let code: number | null = null;
  const status = child.status.then((s) => {
    exited = true;
    code = s.code;
    live.delete(kill);
    return s;
  });
  const node: NodeProc = {
    id,
    port,
    pid: child.pid,
    exited: () => exited,
    exitCode: () => code,
    log: () => text + (dropped ? `\n[${dropped} more bytes of log not kept]\n` : ""),
    stop: async (timeoutMs = 20_000) => {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
        const t = setTimeout(kill, timeoutMs);
        await status;
        clearTimeout(t);
      }
      await drained;
      return code;
    },
  };
  // Ready when it answers an MQTT CONNECT.
  const deadline = Date.now() + 60_000;
  let lastErr = "";
  for (let n = 0; Date.now() < deadline; n++) {
    if (exited) {
      await drained;
      throw new Error(`node ${id} exited during start-up (code ${code}):\n${text.slice(-3000)}`);
    }
    try {
      const c = await BenchConn.open(port, `probe-${id}-${n}`, { timeoutMs: 5000 });
      await c.close();
      return node;
    } catch (e) {
      lastErr = String(e);
      await sleep(100);
    }
  }
  await node.stop(1000);
  throw new Error(`node ${id} did not answer CONNECT on port ${port}: ${lastErr}`);
}

type WorkerEvent = Record<string, unknown> & { type: string };

class WorkerProc {
  readonly pid: number;
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #latest = new Map<string, WorkerEvent>();
  #waiters: { type: string; resolve: (e: WorkerEvent) => void; reject: (e: Error) => void }[] = [];
  #exited = false;
  #stderr = "";
  readonly done: Promise<void>;

  constructor(readonly node: string, args: string[]) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", WORKER, ...args],
      cwd: REPO_ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.#child.pid;
    const kill = () => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    };
    live.add(kill);
    this.#writer = this.#child.stdin.getWriter();
    const readOut = async () => {
      const dec = new TextDecoder();
      let buf = "";
      try {
        for await (const chunk of this.#child.stdout) {
          buf += dec.decode(chunk, { stream: true });
          let nl;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            try {
              this.#event(JSON.parse(line));
            } catch {
              this.#stderr = (this.#stderr + line + "\n").slice(-4000);
            }
          }
        }
      } catch { /* closed */ }
    };
    const readErr = async () => {
      const dec = new TextDecoder();
      try {
        for await (const chunk of this.#child.stderr) {
          this.#stderr = (this.#stderr + dec.decode(chunk)).slice(-4000);
        }
      } catch { /* closed */ }
    };
    this.done = Promise.all([readOut(), readErr(), this.#child.status]).then(() => {
      this.#exited = true;
      live.delete(kill);
      const why = new Error(`generator for ${node} exited: ${this.#stderr.trim().slice(-1000)}`);
      for (const w of this.#waiters.splice(0)) w.reject(why);
    });
  }

  #event(e: WorkerEvent): void {
    this.#latest.set(e.type, e);
    if (e.type === "error") {
      const err = new Error(`generator for ${this.node}: ${e.error}`);
      for (const w of this.#waiters.splice(0)) w.reject(err);
      return;
    }
    this.#waiters = this.#waiters.filter((w) => {
      if (w.type !== e.type) return true;
      w.resolve(e);
      return false;
    });
  }

  latest(type: string): WorkerEvent | undefined {
    return this.#latest.get(type);
  }

  /** The next event of `type` (or the one already received when `seen` is allowed). */
  wait(type: string, timeoutMs: number, seen = true): Promise<WorkerEvent> {
    const have = this.#latest.get(type);
    if (seen && have) return Promise.resolve(have);
    if (this.#exited) return Promise.reject(new Error(`generator for ${this.node} has exited`));
    return new Promise<WorkerEvent>((resolve, reject) => {
      const t = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== res);
        reject(new Error(`generator for ${this.node}: no "${type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const res = (e: WorkerEvent) => {
        clearTimeout(t);
        resolve(e);
      };
      this.#waiters.push({
        type,
        resolve: res,
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
    });
  }

  async send(cmd: string): Promise<void> {
    if (this.#exited) return;
    await this.#writer.write(new TextEncoder().encode(cmd + "\n")).catch(() => {});
  }

  async close(timeoutMs = 20_000): Promise<void> {
    await this.send("close");
    await this.#writer.close().catch(() => {});
    const t = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }, timeoutMs);
    await this.done;
    clearTimeout(t);
  }
}

// ------------------------------------------------------------------ limit check

async function runLimitCheck(redisPort: number, log: (s: string) => void): Promise<LimitCheck> {
  const LIMIT = 100;
  const EXTRA = 20;
  const checks: LimitCheck["checks"] = [];
  const check = (what: string, ok: boolean, detail: string) => checks.push({ what, ok, detail });
  // Its own key prefix: a separate cluster, so the main nodes never see it (nor take it over).
  const node = await startNode("nlimit", redisPort, LIMIT, "info", "limitcheck:");
  const set = new ConnectionSet();
  try {
    await sleep(200); // the readiness probe's close is processed
    const startLine = node.log().split("\n").find((l) => /started .*connection limit/.test(l));
    check(
      `states its connection limit (${LIMIT}) at start-up`,
      !!startLine && new RegExp(`connection limit ${LIMIT}\\b`).test(startLine),
      startLine?.replace(/^\S+\s+/, "") ?? "no start-up line with the connection limit",
    );
    const a = await set.connectMany({
      port: node.port,
      count: LIMIT,
      clientId: (i) => `limit-a-${i}`,
      concurrency: 20,
      connackTimeoutMs: 10_000,
    });
    check(`first ${LIMIT} connects get CONNACK 0x00`, a.connected === LIMIT, summary(a));
    const b = await set.connectMany({
      port: node.port,
      count: EXTRA,
      clientId: (i) => `limit-b-${i}`,
      concurrency: EXTRA,
      connackTimeoutMs: 10_000,
    });
    check(
      `${EXTRA} extra connects get CONNACK 0x03 (server unavailable)`,
      b.refused.rc3 === EXTRA && b.connected === 0,
      summary(b),
    );
    await sleep(500);
    check(
      "refused connections are closed by the broker",
      set.refusedClosedByPeer === EXTRA,
      `${set.refusedClosedByPeer}/${EXTRA} closed`,
    );
    check(
      `the ${LIMIT} accepted connections stay open`,
      set.open === LIMIT,
      `${set.open} open, ${set.closedAfterConnack} closed by the broker`,
    );
    const warns = node.log().split("\n").filter((l) =>
      new RegExp(` WARN .*connection limit ${LIMIT} reached`).test(l)
    );
    check(
      "refusals are logged",
      warns.length > 0,
      warns.length ? `${warns.length}x "${warns[0].replace(/^\S+\s+/, "")}"` : "no log line",
    );
    check("node still running", !node.exited(), node.exited() ? `exited ${node.exitCode()}` : "");
    set.destroyAll();
    await sleep(500);
    let fresh = "ok";
    try {
      const c = await BenchConn.open(node.port, "limit-fresh", { timeoutMs: 10_000 });
      await c.close();
    } catch (e) {
      fresh = e instanceof Error ? e.message : String(e);
    }
    check("accepts a fresh CONNECT once below the limit again", fresh === "ok", fresh);
  } catch (e) {
    check("limit check ran", false, e instanceof Error ? e.message : String(e));
  } finally {
    set.destroyAll();
  }
  const code = await node.stop();
  check("stops cleanly on SIGTERM (exit code 0)", code === 0, `exit code ${code}`);
  const crash = node.log().split("\n").filter(isCrashLine);
  check("no crash or error in its log", crash.length === 0, crash.slice(0, 3).join(" | "));
  const pass = checks.every((c) => c.ok);
  log(`conn-cluster: limit check ${pass ? "PASS" : "FAIL"}`);
  return { pass, checks };
}

function summary(r: {
  connected: number;
  refused: Record<string, number>;
  errors: Record<string, number>;
}): string {
  const parts = [`${r.connected} accepted`];
  for (const [k, v] of Object.entries(r.refused)) parts.push(`${v} CONNACK 0x0${k.slice(2)}`);
  for (const [k, v] of Object.entries(r.errors)) parts.push(`${v} ${k}`);
  return parts.join(", ");
}

function isCrashLine(l: string): boolean {
  return / ERROR /.test(l) || /^error: /i.test(l) ||
    /Uncaught|panicked|RangeError|TypeError/.test(l);
}

/** WARN/ERROR lines and crashes of a node's log, grouped with counts (numbers normalized). */
function problems(node: string, text: string): string[] {
  const groups = new Map<string, { n: number; first: string }>();
  for (const line of text.split("\n")) {
    if (!/ WARN | ERROR /.test(line) && !isCrashLine(line)) continue;
    const key = line.replace(/^\S+Z\s+/, "").replace(/\d+/g, "#");
    const g = groups.get(key);
    if (g) g.n++;
    else groups.set(key, { n: 1, first: line });
  }
  return [...groups.values()].map((g) => `${node}: ${g.n > 1 ? `${g.n}x ` : ""}${g.first}`);
}

// ------------------------------------------------------------------ scenario

function mib(kib: number): number {
  return kib / 1024;
}

export async function runConnCluster(o: ConnClusterOptions): Promise<ConnClusterOutcome> {
  const progress = o.progress ?? ((s: string) => console.error(s));
  const n = Math.floor(o.connections);
  if (!(n >= CLUSTER_NODES && n <= MAX_CLUSTER_CONNECTIONS)) {
    throw new Error(`connections must be ${CLUSTER_NODES}..${MAX_CLUSTER_CONNECTIONS}, got ${n}`);
  }
  const concurrency = o.concurrency ?? 64;
  const res = emptyResult("mqttwk", o.scenario ?? "conn-cluster", o.round ?? 1);
  const started = performance.now();
  const shares = Array.from(
    { length: CLUSTER_NODES },
    (_, k) => Math.floor(n / CLUSTER_NODES) + (k < n % CLUSTER_NODES ? 1 : 0),
  );
  let redis: RedisServer | null = null;
  const nodes: NodeProc[] = [];
  const workers: WorkerProc[] = [];
  const reports: NodeReport[] = [];
  let limit: LimitCheck | null = null;
  const errors: string[] = [];
  const out: string[] = [];
  let redisInfo = "";
  try {
    redis = await startRedis();
    live.add(() => void redis?.kill());
    progress(`conn-cluster: redis-server on 127.0.0.1:${redis.port}`);

    if (o.limitCheck ?? true) {
      progress("conn-cluster: limit check, node with max-connections=100 and 120 connects");
      limit = await runLimitCheck(redis.port, progress);
    }

    const ids = Array.from({ length: CLUSTER_NODES }, (_, k) => `n${k + 1}`);
    nodes.push(
      ...await Promise.all(
        ids.map((id) => startNode(id, redis!.port, NODE_MAX_CONNECTIONS, "warn")),
      ),
    );
    progress(
      `conn-cluster: nodes ${nodes.map((x) => `${x.id}=127.0.0.1:${x.port}`).join(", ")}; ` +
        `${fmtNum(n)} connections (${shares.map((x) => fmtNum(x)).join(" + ")}), ${concurrency} ` +
        "connects in flight per generator",
    );

    // Source addresses 127.0.<x>.<1..20>, 1,000 per address; x moves between runs so that
    // sockets left in TIME_WAIT by a previous run do not matter.
    const salt = Math.floor(Math.random() * 80);
    nodes.forEach((node, k) => {
      workers.push(
        new WorkerProc(node.id, [
          "--port",
          String(node.port),
          "--count",
          String(shares[k]),
          "--prefix",
          `cc${res.round}-${node.id}`,
          "--addr-x",
          String(1 + salt * CLUSTER_NODES + k),
          "--per-addr",
          "1000",
          "--concurrency",
          String(concurrency),
          "--connect-deadline-s",
          String(CONNECT_PHASE_S),
          "--lifetime-s",
          String(CONNECT_PHASE_S + 60),
        ]),
      );
    });
    await Promise.all(workers.map((w) => w.wait("ready", 60_000)));
    await sleep(500);

    const mem0 = nodes.map((x) => memoryKiB(x.pid));
    const cpu0 = nodes.map((x) => cpuSeconds(x.pid));
    const gen0 = workers.map((w) => cpuSeconds(w.pid));
    const sys0 = systemBusySeconds();
    const t0 = performance.now();
    await Promise.all(workers.map((w) => w.send("go")));
    const ticker = setInterval(() => {
      const secs = (performance.now() - t0) / 1000;
      let total = 0;
      const parts = nodes.map((x, k) => {
        const p = workers[k].latest("connected") ?? workers[k].latest("progress");
        const c = Number(p?.connected ?? 0);
        total += c;
        let rss = NaN;
        try {
          rss = mib(memoryKiB(x.pid).rss);
        } catch { /* exited */ }
        const f = Number(p?.failed ?? 0);
        return `${x.id} ${fmtNum(c)}${f ? ` (${fmtNum(f)} failed)` : ""} ${fmtNum(rss)} MiB`;
      });
      progress(
        `  ${secs.toFixed(0).padStart(3)} s: ${parts.join(", ")}; total ${fmtNum(total)} ` +
          `(${fmtNum(total / secs)}/s)`,
      );
    }, 5000);
    let done: WorkerEvent[];
    try {
      done = await Promise.all(
        workers.map((w) => w.wait("connected", (CONNECT_PHASE_S + 30) * 1000)),
      );
    } finally {
      clearInterval(ticker);
    }
    const t1 = performance.now();
    const cpu1 = nodes.map((x) => (x.exited() ? NaN : cpuSeconds(x.pid)));
    const gen1 = workers.map((w) => cpuSeconds(w.pid));
    const sys1 = systemBusySeconds();
    const wall = (t1 - t0) / 1000;

    // Idle: measure memory after 1 s, then check liveness at ~2 s.
    await sleep(1000);
    const mem1 = nodes.map((x) => (x.exited() ? { rss: NaN, hwm: NaN } : memoryKiB(x.pid)));
    await sleep(Math.max(0, IDLE_MS - 1000));
    const status = await Promise.all(
      workers.map((w) => w.send("status").then(() => w.wait("status", 10_000, false))),
    );
    const fresh = await Promise.all(nodes.map(async (x) => {
      if (x.exited()) return `node exited (code ${x.exitCode()})`;
      try {
        const c = await BenchConn.open(x.port, `fresh-${x.id}-${res.round}`, { timeoutMs: 10_000 });
        await c.close();
        return "ok";
      } catch (e) {
        return e instanceof Error ? e.message : String(e);
      }
    }));
    const memEnd = nodes.map((x) => (x.exited() ? mem1[nodes.indexOf(x)] : memoryKiB(x.pid)));
    try {
      // Which node Redis says holds each client id (informational).
      const byNode = new Map<string, number>();
      for (const v of (await redis.cli("hvals", "mqttwk:{g}:holder")).split("\n")) {
        if (v.trim()) byNode.set(v.trim(), (byNode.get(v.trim()) ?? 0) + 1);
      }
      const used = (await redis.cli("info", "memory")).match(/used_memory_human:(\S+)/)?.[1];
      redisInfo = `Redis: holder map ${
        [...byNode].map(([k, v]) => `${k} ${fmtNum(v)}`).join(", ") || "empty"
      }; used_memory ${used ?? "?"}`;
    } catch { /* informational only */ }

    nodes.forEach((x, k) => {
      const d = done[k];
      const connected = Number(d.connected);
      const secs = Number(d.seconds);
      reports.push({
        node: x.id,
        port: x.port,
        target: shares[k],
        connected,
        failed: Number(d.failed),
        refused: d.refused as Record<string, number>,
        errors: d.errors as Record<string, number>,
        connectSeconds: secs,
        connectRate: connected / secs,
        rssBaselineMiB: mib(mem0[k].rss),
        rssAfterMiB: mib(mem1[k].rss),
        rssPerConnKiB: (mem1[k].rss - mem0[k].rss) / Math.max(1, connected),
        peakRssMiB: mib(memEnd[k].hwm),
        cpuPct: ((cpu1[k] - cpu0[k]) / wall) * 100,
        openAfterIdle: Number(status[k].open),
        closedByBroker: Number(status[k].closedByBroker),
        aliveAfterIdle: !x.exited(),
        freshConnect: fresh[k],
        exitCode: null,
      });
    });
    const total = reports.reduce((a, r) => a + r.connected, 0);
    const failed = reports.reduce((a, r) => a + r.failed, 0);
    res.connections = total;
    res.failedConnections = failed;
    res.connectSeconds = wall;
    res.connectRate = total / wall;
    res.rssPerConnKiB = reports.reduce((a, r) => a + (r.rssAfterMiB - r.rssBaselineMiB), 0) *
      1024 / Math.max(1, total);
    res.brokerPeakRssMiB = Math.max(...reports.map((r) => r.peakRssMiB));
    res.brokerCpuPct = reports.reduce((a, r) => a + r.cpuPct, 0);
    res.genCpuPct = (gen1.reduce((a, c, k) => a + c - gen0[k], 0) / wall) * 100;
    res.otherCpuPct = Math.max(0, ((sys1 - sys0) / wall) * 100 - res.brokerCpuPct - res.genCpuPct);

    for (const r of reports) {
      if (r.connected !== r.target) {
        errors.push(`${r.node}: ${r.connected}/${r.target} connected (${summary(r)})`);
      }
      if (!r.aliveAfterIdle) errors.push(`${r.node} exited during the run`);
      if (r.closedByBroker) errors.push(`${r.node} closed ${r.closedByBroker} idle connections`);
      if (r.freshConnect !== "ok") errors.push(`${r.node} fresh CONNECT: ${r.freshConnect}`);
    }
  } catch (e) {
    errors.push(e instanceof Error ? e.message : String(e));
  } finally {
    // Generators close their sockets first, then the nodes stop, then Redis.
    await Promise.all(workers.map((w) => w.close()));
    const codes = await Promise.all(nodes.map((x) => x.stop()));
    codes.forEach((c, k) => {
      if (reports[k]) reports[k].exitCode = c;
      if (c !== 0) errors.push(`${nodes[k].id} exit code ${c} on SIGTERM`);
    });
    await redis?.kill();
  }

  const brokerProblems = nodes.flatMap((x) => problems(x.id, x.log()));
  if (limit && !limit.pass) errors.push("limit check FAILED");
  res.ok = errors.length === 0;
  if (!res.ok) res.error = errors.join("; ");
  res.detail = {
    nodes: reports,
    limitCheck: limit,
    brokerProblems,
    redis: redisInfo,
    concurrencyPerGenerator: concurrency,
    elapsedSeconds: (performance.now() - started) / 1000,
  };

  out.push(
    "",
    `== conn-cluster: ${fmtNum(n)} idle connections over ${CLUSTER_NODES} MqttWk cluster nodes ` +
      `(max-connections ${fmtNum(NODE_MAX_CONNECTIONS)} each, one generator process per node)`,
  );
  if (reports.length) {
    const row = (r: NodeReport) => [
      r.node,
      `${fmtNum(r.connected)}/${fmtNum(r.target)}`,
      fmtSig(r.connectSeconds),
      fmtNum(r.connectRate),
      fmtSig(r.rssBaselineMiB),
      fmtSig(r.rssAfterMiB),
      fmtSig(r.rssPerConnKiB),
      fmtSig(r.peakRssMiB),
      fmtNum(r.cpuPct),
      fmtNum(r.failed),
      r.aliveAfterIdle && r.freshConnect === "ok" && r.openAfterIdle === r.connected ? "yes" : "NO",
      r.exitCode === null ? "-" : String(r.exitCode),
    ];
    out.push(table(
      [
        "node",
        "connected",
        "connect s",
        "conn/s",
        "RSS base MiB",
        "RSS after MiB",
        "RSS/conn KiB",
        "peak RSS MiB",
        "CPU%",
        "failed",
        "ok after idle",
        "exit",
      ],
      [
        ...reports.map(row),
        [
          "total",
          `${fmtNum(res.connections ?? NaN)}/${fmtNum(n)}`,
          fmtSig(res.connectSeconds ?? NaN),
          fmtNum(res.connectRate ?? NaN),
          fmtSig(reports.reduce((a, r) => a + r.rssBaselineMiB, 0)),
          fmtSig(reports.reduce((a, r) => a + r.rssAfterMiB, 0)),
          fmtSig(res.rssPerConnKiB ?? NaN),
          fmtSig(reports.reduce((a, r) => a + r.peakRssMiB, 0)),
          fmtNum(res.brokerCpuPct),
          fmtNum(res.failedConnections ?? NaN),
          "",
          "",
        ],
      ],
    ));
    out.push(
      `generators CPU ${fmtNum(res.genCpuPct)}%, other CPU ${fmtNum(res.otherCpuPct)}% ` +
        "(100 = one core; other includes redis-server)",
    );
    for (const r of reports) {
      const bad = [...Object.entries(r.refused), ...Object.entries(r.errors)];
      if (bad.length) out.push(`${r.node} failures: ${summary({ ...r, connected: r.connected })}`);
    }
    if (redisInfo) out.push(redisInfo);
  }
  if (limit) {
    out.push(`limit check (max-connections=100, 120 connects): ${limit.pass ? "PASS" : "FAIL"}`);
    for (const c of limit.checks) {
      out.push(`  ${c.ok ? "ok  " : "FAIL"} ${c.what}${c.detail ? `: ${c.detail}` : ""}`);
    }
  }
  if (brokerProblems.length) {
    out.push(`broker log lines at WARN/ERROR (${brokerProblems.length} kinds):`);
    for (const p of brokerProblems.slice(0, 30)) out.push(`  ${p}`);
  } else if (nodes.length) out.push("broker logs: no WARN/ERROR lines");
  out.push(
    `conn-cluster: ${res.ok ? "OK" : `FAILED: ${res.error}`} (${
      fmtSig((performance.now() - started) / 1000)
    } s)`,
  );
  return { result: res, nodes: reports, limit, brokerProblems, text: out.join("\n") };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      connections: { type: "string", default: String(DEFAULT_CLUSTER_CONNECTIONS) },
      concurrency: { type: "string", default: "64" },
      "no-limit-check": { type: "boolean", default: false },
      json: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno run -A bench/cluster_conn.ts [--connections N (default 50000, max " +
        `${MAX_CLUSTER_CONNECTIONS})] [--concurrency N per generator (64)] [--no-limit-check] ` +
        "[--json FILE]",
    );
    Deno.exit(0);
  }
  const n = Number(values.connections);
  const c = Number(values.concurrency);
  if (!Number.isInteger(n) || n < CLUSTER_NODES || n > MAX_CLUSTER_CONNECTIONS) {
    console.error(`--connections must be ${CLUSTER_NODES}..${MAX_CLUSTER_CONNECTIONS}`);
    Deno.exit(2);
  }
  if (!Number.isInteger(c) || c < 1 || c > 1000) {
    console.error("--concurrency must be 1..1000");
    Deno.exit(2);
  }
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => {
      console.error(`conn-cluster: ${sig}, stopping`);
      killAll();
      Deno.exit(130);
    });
  }
  const r = await runConnCluster({
    connections: n,
    concurrency: c,
    limitCheck: !values["no-limit-check"],
  });
  console.log(r.text);
  if (values.json) {
    Deno.writeTextFileSync(
      values.json,
      JSON.stringify(r.result, (_k, v) => Number.isNaN(v) ? null : v, 2),
    );
  }
  Deno.exit(r.result.ok ? 0 : 1);
}
