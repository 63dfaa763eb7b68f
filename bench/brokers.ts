/**
 * Brokers under test: how to provision, start, probe, measure and stop each one.
 *
 * Every broker is started fresh per measured run on a free loopback port, as a direct child of
 * the bench (no shell, no task runner), so the pid we read /proc of is the broker itself.
 */

import { BenchConn, sleep } from "./client.ts";
import type { Endpoint, Transport } from "./wire_transport.ts";

export type BrokerName = "mqttwk" | "mqttwk-durable" | "mqttwk-baseline" | "mosquitto" | "aedes";

/**
 * Another checkout of MqttWk (e.g. `git worktree add /tmp/base main~5`) run beside this one in
 * the same rounds, for before/after comparisons that share the machine's noise:
 * MQTTWK_BENCH_BASELINE=/tmp/base deno task bench.
 */
export const BASELINE_ROOT = Deno.env.get("MQTTWK_BENCH_BASELINE")?.replace(/\/$/, "") || null;

export const ALL_BROKERS: BrokerName[] = [
  "mqttwk",
  ...(BASELINE_ROOT ? ["mqttwk-baseline" as const] : []),
  "mqttwk-durable",
  "mosquitto",
  "aedes",
];

export const AEDES_VERSION = "1.2.0";
export const MOSQUITTO_BIN = "/usr/sbin/mosquitto";

/** Limits given to every broker so that none is throttled by a default the others lack. */
export const BROKER_LIMITS = {
  maxConnections: 19_500,
  maxInflight: 1000,
  maxQueued: 100_000,
  /** max-queued-bytes-total: 100,000 queued 1 KiB messages count about 150 MiB. */
  maxQueuedBytesTotal: 1024 * 1048576,
};

const REPO_ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/**
 * The V8 flags `deno task start` runs the broker with (deno.json), so every bench measures the
 * broker as users run it.
 */
export const START_V8_FLAGS: string[] = (() => {
  const tasks = JSON.parse(Deno.readTextFileSync(`${REPO_ROOT}/deno.json`)).tasks;
  return String(tasks.start).split(/\s+/).filter((a) => a.startsWith("--v8-flags="));
})();
const AEDES_PREFIX = `${REPO_ROOT}/.cache/aedes`;
const AEDES_MODULE = `${AEDES_PREFIX}/node_modules/aedes/aedes.js`;

export class Unavailable extends Error {}

/** Checks or installs what a broker needs. Throws Unavailable with a reason otherwise. */
export async function provision(name: BrokerName): Promise<string> {
  switch (name) {
    case "mqttwk":
    case "mqttwk-durable": {
      if (!exists(`${REPO_ROOT}/main.ts`)) throw new Unavailable("main.ts does not exist yet");
      return "MqttWk (this repo)";
    }
    case "mqttwk-baseline": {
      if (!BASELINE_ROOT) throw new Unavailable("MQTTWK_BENCH_BASELINE is not set");
      if (!exists(`${BASELINE_ROOT}/main.ts`)) {
        throw new Unavailable(`${BASELINE_ROOT}/main.ts not found`);
      }
      return `MqttWk (baseline ${BASELINE_ROOT})`;
    }
    case "mosquitto": {
      if (!exists(MOSQUITTO_BIN)) {
        throw new Unavailable(`${MOSQUITTO_BIN} not found (apt-get install mosquitto)`);
      }
      const out = await new Deno.Command(MOSQUITTO_BIN, { args: ["-h"], stdout: "piped" })
        .output();
      const m = new TextDecoder().decode(out.stdout).match(/mosquitto version (\S+)/);
      return `Mosquitto ${m?.[1] ?? "?"}`;
    }
    case "aedes": {
      const pkg = `${AEDES_PREFIX}/node_modules/aedes/package.json`;
      let installed = "";
      try {
        installed = JSON.parse(Deno.readTextFileSync(pkg)).version;
      } catch { /* not installed */ }
      if (installed !== AEDES_VERSION) {
        console.error(`installing aedes@${AEDES_VERSION} into ${AEDES_PREFIX} ...`);
        Deno.mkdirSync(AEDES_PREFIX, { recursive: true });
        let out: Deno.CommandOutput;
        try {
          out = await new Deno.Command("npm", {
            args: [
              "install",
              "--prefix",
              AEDES_PREFIX,
              "--no-audit",
              "--no-fund",
              `aedes@${AEDES_VERSION}`,
            ],
            stdout: "piped",
            stderr: "piped",
          }).output();
        } catch (e) {
          throw new Unavailable(`npm not runnable: ${e}`);
        }
        if (!out.success || !exists(AEDES_MODULE)) {
          throw new Unavailable(
            `npm install aedes@${AEDES_VERSION} failed: ${new TextDecoder().decode(out.stderr)}`,
          );
        }
      }
      const node = await new Deno.Command("node", { args: ["--version"], stdout: "piped" })
        .output().catch(() => null);
      if (!node?.success) throw new Unavailable("node not found");
      return `Aedes ${AEDES_VERSION} on Node ${new TextDecoder().decode(node.stdout).trim()}`;
    }
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export interface RunningBroker {
  name: BrokerName;
  port: number;
  /** Where each listener the run asked for is (tcp always). */
  endpoints: Partial<Record<Transport, Endpoint>>;
  pid: number;
  /** Where subscribers connect when not to `port` (cluster scenarios: another node). */
  subPort?: number;
  /** Further processes whose CPU counts as the broker's (cluster: node B, redis), by label. */
  otherPids?: Record<string, number>;
  /** Last lines of the broker's output, for error messages. */
  logTail(): string;
  stop(): Promise<void>;
}

/** A throw-away CA and server certificate for localhost (scripts/gen-dev-cert.sh), made once. */
let tlsDir: string | null = null;
export function benchTlsMaterial(): {
  dir: string;
  ca: string;
  cert: string;
  key: string;
  clientCert: string;
  clientKey: string;
} {
  if (tlsDir === null) {
    const dir = Deno.makeTempDirSync({ prefix: "mqttwk-bench-tls-" });
    const out = new Deno.Command("bash", {
      args: [`${REPO_ROOT}/scripts/gen-dev-cert.sh`, dir],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    if (!out.success) {
      throw new Error(`gen-dev-cert.sh failed: ${new TextDecoder().decode(out.stderr)}`);
    }
    // One client certificate for the mtls scenario (its CN becomes every client's username).
    const sh = (cmd: string) => {
      const r = new Deno.Command("bash", { args: ["-c", cmd], cwd: dir, stderr: "piped" })
        .outputSync();
      if (!r.success) throw new Error(`${cmd}: ${new TextDecoder().decode(r.stderr)}`);
    };
    Deno.writeTextFileSync(
      `${dir}/client.ext`,
      "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n" +
        "extendedKeyUsage=clientAuth\n",
    );
    sh(
      "openssl req -newkey rsa:2048 -nodes -sha256 -subj /CN=bench-client " +
        "-keyout client.key -out client.csr 2>/dev/null",
    );
    sh(
      "openssl x509 -req -sha256 -days 2 -in client.csr -CA ca.pem -CAkey ca.key " +
        "-set_serial 7 -extfile client.ext -out client.pem 2>/dev/null",
    );
    // Mosquitto started as root drops to its own user, which must be able to read these.
    Deno.chmodSync(dir, 0o755);
    for (const f of ["ca.pem", "server.pem", "server.key"]) Deno.chmodSync(`${dir}/${f}`, 0o644);
    tlsDir = dir;
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch { /* gone */ }
    });
  }
  return {
    dir: tlsDir,
    ca: Deno.readTextFileSync(`${tlsDir}/ca.pem`),
    cert: `${tlsDir}/server.pem`,
    key: `${tlsDir}/server.key`,
    clientCert: Deno.readTextFileSync(`${tlsDir}/client.pem`),
    clientKey: Deno.readTextFileSync(`${tlsDir}/client.key`),
  };
}

/** Ports of the extra listeners a run asked for. */
type ExtraPorts = Partial<Record<Exclude<Transport, "tcp">, number>>;

function mosquittoConfig(port: number, extra: ExtraPorts = {}): string {
  const l = BROKER_LIMITS;
  const tls = extra.tls || extra.wss || extra.mtls ? benchTlsMaterial() : null;
  const listeners: string[] = [];
  if (extra.tls) {
    listeners.push(
      `listener ${extra.tls} 127.0.0.1`,
      `certfile ${tls!.cert}`,
      `keyfile ${tls!.key}`,
    );
  }
  if (extra.mtls) {
    listeners.push(
      `listener ${extra.mtls} 127.0.0.1`,
      `certfile ${tls!.cert}`,
      `keyfile ${tls!.key}`,
      `cafile ${tls!.dir}/ca.pem`,
      "require_certificate true",
      "use_identity_as_username true",
    );
  }
  if (extra.ws) listeners.push(`listener ${extra.ws} 127.0.0.1`, "protocol websockets");
  if (extra.wss) {
    listeners.push(
      `listener ${extra.wss} 127.0.0.1`,
      "protocol websockets",
      `certfile ${tls!.cert}`,
      `keyfile ${tls!.key}`,
    );
  }
  return [
    ...listeners,
    `listener ${port} 127.0.0.1`,
    "allow_anonymous true",
    "persistence false",
    "max_connections -1",
    `max_inflight_messages ${l.maxInflight}`,
    `max_queued_messages ${l.maxQueued}`,
    "set_tcp_nodelay true",
    "log_dest stderr",
    "log_type error",
    "log_type warning",
    "",
  ].join("\n");
}

/**
 * Starts `name` on free ports with the given transports; `extraArgs` go to MqttWk's command line
 * (cluster nodes). A port found free can be taken before the broker binds it (by another process's
 * outgoing connection, in a parallel test run): such a start is tried again on new ports.
 */
export async function startBroker(
  name: BrokerName,
  transports: readonly Transport[] = ["tcp"],
  extraArgs: string[] = [],
): Promise<RunningBroker> {
  for (let attempt = 1;; attempt++) {
    try {
      return await startOnFreePorts(name, transports, extraArgs);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (attempt >= 3 || !PORT_TAKEN.test(msg)) throw e;
    }
  }
}

/** How a broker's start-up says that a port was taken. */
const PORT_TAKEN = /unable to create .*listener|address already in use|EADDRINUSE|AddrInUse/i;

async function startOnFreePorts(
  name: BrokerName,
  transports: readonly Transport[],
  extraArgs: string[],
): Promise<RunningBroker> {
  const port = freePort();
  const extra: ExtraPorts = {};
  for (const t of transports) if (t !== "tcp") extra[t] = freePort();
  const endpoints: Partial<Record<Transport, Endpoint>> = {
    tcp: { hostname: "127.0.0.1", port, transport: "tcp" },
  };
  for (const [t, p] of Object.entries(extra) as [Exclude<Transport, "tcp">, number][]) {
    endpoints[t] = {
      hostname: "127.0.0.1",
      port: p,
      transport: t,
      ca: t === "ws" ? undefined : benchTlsMaterial().ca,
      ...(t === "mtls"
        ? { cert: benchTlsMaterial().clientCert, key: benchTlsMaterial().clientKey }
        : {}),
      path: "/mqtt",
    };
  }
  const tmp = Deno.makeTempDirSync({ prefix: `mqttwk-bench-${name}-` });
  let cmd: string;
  let args: string[];
  const mqttwkLimits = [
    `--mqttwk.broker.max-connections=${BROKER_LIMITS.maxConnections}`,
    `--mqttwk.broker.max-inflight=${BROKER_LIMITS.maxInflight}`,
    `--mqttwk.broker.max-queued-messages=${BROKER_LIMITS.maxQueued}`,
    // Every bench client comes from loopback: the per-address session limit (1,000 by default)
    // would refuse the 1,001st client of fanout1000; Mosquitto has no such limit.
    `--mqttwk.broker.max-sessions-per-address=${BROKER_LIMITS.maxConnections}`,
    // A baseline checkout may predate the key (its own default then applies).
    ...(name === "mqttwk-baseline"
      ? []
      : [`--mqttwk.broker.max-queued-bytes-total=${BROKER_LIMITS.maxQueuedBytesTotal}`]),
  ];
  switch (name) {
    case "mqttwk":
    case "mqttwk-baseline":
    case "mqttwk-durable":
      cmd = Deno.execPath();
      args = [
        "run",
        "--allow-all",
        ...START_V8_FLAGS,
        // For profiling, e.g. MQTTWK_BENCH_DENO_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
        ...(Deno.env.get("MQTTWK_BENCH_DENO_FLAGS")?.split(" ").filter(Boolean) ?? []),
        // A runtime flag's before/after in the same rounds: the baseline may be this very
        // checkout, run with other flags (given last, so its --v8-flags replace the others).
        ...(name === "mqttwk-baseline"
          ? Deno.env.get("MQTTWK_BENCH_BASELINE_DENO_FLAGS")?.split(" ").filter(Boolean) ?? []
          : []),
        "main.ts",
        "--host",
        "127.0.0.1",
        "--port",
        String(port),
        ...(name !== "mqttwk-durable"
          ? ["--persistence", "memory"]
          : ["--persistence", "sqlite", "--data-dir", tmp]),
        ...(extra.ws
          ? ["--mqttwk.broker.websocket-enabled=true", `--mqttwk.broker.websocket-port=${extra.ws}`]
          : ["--mqttwk.broker.websocket-enabled=false"]),
        ...(extra.tls || extra.wss || extra.mtls
          ? [
            `--mqttwk.broker.ssl-cert-file=${benchTlsMaterial().cert}`,
            `--mqttwk.broker.ssl-key-file=${benchTlsMaterial().key}`,
            `--mqttwk.broker.ssl-port=${extra.tls ?? extra.mtls ?? freePort()}`,
            `--mqttwk.broker.wss-port=${extra.wss ?? freePort()}`,
          ]
          : []),
        // Mutual TLS on the TLS listener, the certificate's CN as the username.
        ...(extra.mtls
          ? [
            "--mqttwk.broker.ssl-client-auth=required",
            `--mqttwk.broker.ssl-ca-file=${benchTlsMaterial().dir}/ca.pem`,
            "--mqttwk.broker.ssl-cn-as-username=true",
          ]
          : []),
        "--log-level",
        "warn",
        ...mqttwkLimits,
        ...extraArgs,
      ];
      break;
    case "mosquitto":
      Deno.writeTextFileSync(`${tmp}/mosquitto.conf`, mosquittoConfig(port, extra));
      cmd = MOSQUITTO_BIN;
      args = ["-c", `${tmp}/mosquitto.conf`];
      break;
    case "aedes":
      cmd = "node";
      args = [`${REPO_ROOT}/bench/aedes_server.mjs`, String(port), AEDES_MODULE];
      break;
  }
  const child = new Deno.Command(cmd, {
    args,
    cwd: name === "mqttwk-baseline" ? BASELINE_ROOT! : REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let tail = "";
  const logFile = Deno.env.get("MQTTWK_BENCH_BROKER_LOG");
  const drain = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    try {
      for await (const chunk of s) {
        const text = dec.decode(chunk);
        // For investigations: MQTTWK_BENCH_BROKER_LOG=FILE keeps the broker's whole output.
        if (logFile) Deno.writeTextFileSync(logFile, text, { append: true });
        tail = (tail + text).slice(-4000);
      }
    } catch { /* closed */ }
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });

  const stop = async () => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const t = setTimeout(() => {
        try {
          if (!exited) child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 1000); // a benchmark broker need not shut down gracefully
      await status;
      clearTimeout(t);
    }
    await drained;
    try {
      Deno.removeSync(tmp, { recursive: true });
    } catch { /* ignore */ }
  };

  const broker: RunningBroker = {
    name,
    port,
    endpoints,
    pid: child.pid,
    logTail: () => tail,
    stop,
  };
  // Ready when it answers an MQTT CONNECT (more robust than parsing a log line).
  const deadline = Date.now() + (name.startsWith("mqttwk") ? 90_000 : 20_000);
  let lastErr = "";
  while (Date.now() < deadline) {
    if (exited) {
      await stop();
      throw new Error(`${name} exited during startup (${(await status).code}): ${tail}`);
    }
    try {
      const c = await BenchConn.open(port, "bench-probe", { timeoutMs: 2000 });
      await c.close();
      // Every extra listener answers too before the run starts.
      for (const e of Object.values(endpoints)) {
        if (e.transport === "tcp") continue;
        const x = await BenchConn.open(e.port, "bench-probe", { timeoutMs: 2000, endpoint: e });
        await x.close();
      }
      return broker;
    } catch (e) {
      lastErr = String(e);
      await sleep(100);
    }
  }
  await stop();
  throw new Error(`${name} did not answer CONNECT on port ${port}: ${lastErr}\n${tail}`);
}

/** CPU ticks per second for /proc/<pid>/stat (USER_HZ, 100 on Linux). */
export const CLK_TCK = 100;

/** utime + stime of a process in seconds (all threads). */
export function cpuSeconds(pid: number): number {
  const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** VmRSS and VmHWM (peak) in KiB. */
export function memoryKiB(pid: number): { rss: number; hwm: number } {
  const s = Deno.readTextFileSync(`/proc/${pid}/status`);
  const get = (k: string) => Number(s.match(new RegExp(`^${k}:\\s+(\\d+)`, "m"))?.[1] ?? NaN);
  return { rss: get("VmRSS"), hwm: get("VmHWM") };
}

/**
 * Busy CPU time of the whole machine in seconds, all cores: user + nice + system + steal from
 * /proc/stat. irq/softirq are left out (loopback TCP of our own traffic lands there).
 */
export function systemBusySeconds(): number {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  // user nice system idle iowait irq softirq steal
  return (f[0] + f[1] + f[2] + f[7]) / CLK_TCK;
}
