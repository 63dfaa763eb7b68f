/**
 * Throw-away Redis servers for tests: a standalone redis-server or a 3-master Redis Cluster on
 * free ports, in temp dirs, stopped when the test process ends. Never touches a Redis on 6379.
 *
 * Without redis-server on PATH the Redis tests are skipped (`REDIS_IGNORE`), except with env
 * CI=true, where they run and fail.
 */
import { join } from "node:path";
import { waitFor } from "./wait.ts";

function haveRedis(): boolean {
  try {
    const s = new Deno.Command("redis-server", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .outputSync();
    const c = new Deno.Command("redis-cli", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync();
    return s.success && c.success;
  } catch {
    return false;
  }
}

export const HAVE_REDIS: boolean = haveRedis();
/** Pass as Deno.test's `ignore`: true only when redis-server is missing outside CI. */
export const REDIS_IGNORE: boolean = !HAVE_REDIS && Deno.env.get("CI") !== "true";

const children = new Set<Deno.ChildProcess>();
const dirs = new Set<string>();
globalThis.addEventListener("unload", () => {
  for (const c of children) {
    try {
      c.kill("SIGKILL");
    } catch { /* gone */ }
  }
  for (const d of dirs) {
    try {
      Deno.removeSync(d, { recursive: true });
    } catch { /* gone */ }
  }
});

function portFree(port: number): boolean {
  try {
    const l = Deno.listen({ hostname: "127.0.0.1", port });
    l.close();
    return true;
  } catch {
    return false;
  }
}

/** A free port whose cluster bus port (+10000) is free too. */
export function freePort(): number {
  for (let i = 0; i < 200; i++) {
    const p = 20000 + Math.floor(Math.random() * 30000);
    if (p === 6379) continue;
    if (portFree(p) && portFree(p + 10000)) return p;
  }
  throw new Error("no free port found");
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("redis-cli", {
    args: ["-h", "127.0.0.1", "-p", String(port), ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
}

/** A redis-server that exited before answering, typically because its port was taken. */
class EarlyExit extends Error {}

async function waitPing(
  port: number,
  child: Deno.ChildProcess,
  logFile: string,
  timeoutMs = 10_000,
): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  await waitFor(async () => {
    if ((await cli(port, "ping")).includes("PONG")) return true;
    if (exited) {
      let log = "";
      try {
        log = Deno.readTextFileSync(logFile).trim().split("\n").slice(-3).join("\n");
      } catch { /* no log */ }
      throw new EarlyExit(`redis-server on ${port} exited at start-up:\n${log}`);
    }
  }, { what: `redis-server on ${port} to answer PING`, timeout: timeoutMs, interval: 50 });
}

export interface RedisServer {
  port: number;
  dir: string;
  /** SIGKILL (no save). */
  kill(): Promise<void>;
  /** SHUTDOWN (saves when persistence is on). */
  stop(): Promise<void>;
  /** Starts it again on the same port and dir (after stop or kill). */
  start(): Promise<void>;
  cli(...args: string[]): Promise<string>;
}

export interface RedisServerOptions {
  /** appendonly yes (survives a restart). */
  aof?: boolean;
  cluster?: boolean;
  port?: number;
}

/**
 * Starts one redis-server in its own temp dir. A free port can be taken by a parallel test
 * between the check and the bind: a server that exits at start-up is retried on another one.
 */
export async function startRedis(opts: RedisServerOptions = {}): Promise<RedisServer> {
  if (!HAVE_REDIS) {
    throw new Error("redis-server / redis-cli not found on PATH (apt-get install redis-server)");
  }
  for (let attempt = 1;; attempt++) {
    try {
      return await launchRedis(opts.port ?? freePort(), opts);
    } catch (err) {
      if (!(err instanceof EarlyExit) || opts.port !== undefined || attempt === 3) throw err;
    }
  }
}

async function launchRedis(port: number, opts: RedisServerOptions): Promise<RedisServer> {
  const dir = await Deno.makeTempDir({ prefix: `mqttwk-redis-${port}-` });
  dirs.add(dir);
  let child: Deno.ChildProcess | null = null;
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    opts.aof ? "yes" : "no",
    "--appendfsync",
    "always",
    "--protected-mode",
    "no",
    "--loglevel",
    "warning",
    "--logfile",
    join(dir, "redis.log"),
  ];
  if (opts.cluster) {
    args.push("--cluster-enabled", "yes", "--cluster-config-file", join(dir, "nodes.conf"));
    args.push("--cluster-node-timeout", "2000");
  }
  const start = async () => {
    const c = new Deno.Command("redis-server", {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    children.add(c);
    child = c;
    c.status.then(() => children.delete(c));
    await waitPing(port, c, join(dir, "redis.log"));
  };
  await start();
  const server: RedisServer = {
    port,
    dir,
    cli: (...a) => cli(port, ...a),
    kill: async () => {
      const c = child;
      if (!c) return;
      child = null;
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
      await c.status;
    },
    stop: async () => {
      const c = child;
      if (!c) return;
      child = null;
      await cli(port, "shutdown");
      const t = setTimeout(() => {
        try {
          c.kill("SIGKILL");
        } catch { /* gone */ }
      }, 5000);
      await c.status;
      clearTimeout(t);
    },
    start,
  };
  return server;
}

export interface RedisClusterServers {
  servers: RedisServer[];
  /** "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3" */
  nodes: string;
  stop(): Promise<void>;
}

/** Starts three masters and joins them into a Redis Cluster (no replicas). */
export async function startRedisCluster(): Promise<RedisClusterServers> {
  const servers: RedisServer[] = [];
  for (let i = 0; i < 3; i++) servers.push(await startRedis({ cluster: true }));
  const addrs = servers.map((s) => `127.0.0.1:${s.port}`);
  const out = await new Deno.Command("redis-cli", {
    args: ["--cluster", "create", ...addrs, "--cluster-replicas", "0", "--cluster-yes"],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success || !text.includes("All 16384 slots covered")) {
    for (const s of servers) await s.kill();
    throw new Error(`redis-cli --cluster create failed:\n${text}`);
  }
  const end = Date.now() + 20_000;
  for (const s of servers) {
    await waitFor(async () => (await s.cli("cluster", "info")).includes("cluster_state:ok"), {
      what: `Redis Cluster node ${s.port} to reach cluster_state:ok`,
      timeout: Math.max(0, end - Date.now()),
      interval: 100,
    });
  }
  return {
    servers,
    nodes: addrs.join(","),
    stop: async () => {
      for (const s of servers) await s.kill();
    },
  };
}

let counter = 0;
/** A key prefix no other test uses, so one server serves many tests. */
export function testPrefix(label = "t"): string {
  return `mqttwk-test-${label}-${Date.now().toString(36)}-${(++counter).toString(36)}:`;
}
