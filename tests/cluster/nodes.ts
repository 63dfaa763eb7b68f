/** Cluster nodes as subprocesses: main.ts with --mqttwk.broker.cluster-on=true. */
import type { connectMqttJs } from "../helpers/mqttjs.ts";

const ROOT = new URL("../../", import.meta.url);
const LISTENING = /listening tcp (\S+):(\d+)/;

export interface NodeProcess {
  id: string;
  port: number;
  url: string;
  /** The node's process id, for its memory figures. */
  pid: number;
  /** Whether the process has exited. */
  exited(): boolean;
  logs(): string;
  waitForLog(re: RegExp, timeoutMs?: number): Promise<void>;
  kill(): Promise<void>;
  stop(): Promise<number>;
  /** Sends `sig` (SIGSTOP, SIGCONT, SIGUSR1...) to the node's process. */
  signal(sig: Deno.Signal): void;
}

export async function spawnNode(
  id: string,
  redisArgs: string[],
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<NodeProcess> {
  const entry = "main.ts";
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      entry,
      "--port",
      "0",
      "--host",
      "127.0.0.1",
      "--persistence",
      "memory",
      "--mqttwk.broker.cluster-on=true",
      "--mqttwk.broker.websocket-enabled=false",
      `--node-id=${id}`,
      "--mqttwk.broker.cluster.node-timeout=1",
      ...redisArgs,
      ...extra,
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  let exited = false;
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const d = new TextDecoder();
    for await (const c of s) text += d.decode(c, { stream: true });
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]).catch(() => {});
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const waitForLog = async (re: RegExp, timeoutMs = 15_000) => {
    const end = Date.now() + timeoutMs;
    while (!re.test(text)) {
      if (exited) throw new Error(`node ${id} exited while waiting for ${re}:\n${text}`);
      if (Date.now() > end) throw new Error(`node ${id}: timed out waiting for ${re}:\n${text}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    await waitForLog(LISTENING);
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await status;
    await pumps;
    throw e;
  }
  const port = Number(text.match(LISTENING)![2]);
  return {
    id,
    port,
    url: `mqtt://127.0.0.1:${port}`,
    pid: child.pid,
    exited: () => exited,
    logs: () => text,
    signal: (sig) => {
      if (!exited) child.kill(sig);
    },
    waitForLog,
    kill: async () => {
      if (!exited) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }
      await status;
      await pumps;
    },
    stop: async () => {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
      }
      const t = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 10_000);
      const s = await status;
      clearTimeout(t);
      await pumps;
      return s.code;
    },
  };
}

type MqttJsClient = Awaited<ReturnType<typeof connectMqttJs>>;

/** Publishes probes until the subscriber sees one: routes propagate asynchronously. */
export async function awaitRoute(
  pub: MqttJsClient,
  sub: MqttJsClient,
  topic: string,
): Promise<void> {
  for (let i = 0; i < 100; i++) {
    await pub.publish(topic, "probe", { qos: 0 });
    try {
      await sub.inbox.waitFor((m) => m.topic === topic && m.payload === "probe", 100);
      return;
    } catch { /* not yet */ }
  }
  throw new Error(`route for ${topic} never reached the publisher's node`);
}
