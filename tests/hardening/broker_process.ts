/**
 * The broker under attack, as a subprocess whose memory and life can be watched.
 *
 * Unlike tests/helpers/broker.ts it exposes the process id (for its resident memory), tells at
 * once when the process has exited, and can run another checkout of the project: with
 * MQTTWK_HARDENING_ROOT=/path/to/checkout the hardening tests attack that code instead, which is
 * how they are shown to fail against the code from before a fix.
 */
import { crashSigns, mib, rssOf } from "../helpers/figures.ts";
import { waitFor } from "../helpers/wait.ts";
import { accepts, freePort } from "../helpers/ports.ts";

export { mib, rssOf };

const LOG_CAP = 1 << 20;
const OWN_ROOT = new URL("../../", import.meta.url).pathname;

/** The checkout whose main.ts is attacked. */
export const BROKER_ROOT: string = Deno.env.get("MQTTWK_HARDENING_ROOT") || OWN_ROOT;

/** A running broker subprocess. */
export interface BrokerProcess {
  pid: number;
  host: string;
  /** The MQTT over TCP port. */
  port: number;
  /** The WebSocket port, when started with `websocket: true`. */
  wsPort: number | undefined;
  /** The WebSocket path, e.g. "/mqtt". */
  wsPath: string;
  /** The start and the latest part of what the broker wrote on stdout and stderr. */
  logs(): string;
  /** How many times the output showed an escaped exception or a panic. */
  crashSigns(): number;
  /** The exit status once the process has exited, else undefined. */
  exited(): Deno.CommandStatus | undefined;
  /** Resident memory in bytes now (VmRSS), 0 once the process is gone. */
  rss(): number;
  /** CPU seconds (user + system) the process has used so far. */
  cpuSeconds(): number;
  /** SIGTERM, then SIGKILL after 10 s; resolves with the exit code. */
  stop(): Promise<number>;
}

/** Options for startBrokerProcess. */
export interface BrokerProcessOptions {
  /** Also listen for MQTT over WebSocket on a free port. */
  websocket?: boolean;
  /** Extra main.ts arguments, e.g. "--mqttwk.broker.connect-timeout=1". */
  args?: string[];
  /** Extra Deno flags before main.ts, e.g. "--inspect=127.0.0.1:9229" for a heap census. */
  denoFlags?: string[];
}

/** Starts main.ts of BROKER_ROOT on free loopback ports and waits until it listens. */
export async function startBrokerProcess(o: BrokerProcessOptions = {}): Promise<BrokerProcess> {
  // Ports are chosen here, not read from the "listening" lines: a fuzzed broker runs with
  // log-level error, which prints none.
  const tcpPort = freePort();
  const wsPort = o.websocket ? freePort() : undefined;
  const args = [
    "run",
    "--allow-all",
    // As shipped (deno.json's start task, the Dockerfile): a 4 MiB young generation, whose
    // scavenges stay short. MQTTWK_HARDENING_V8_FLAGS adds more, e.g. "--trace-gc" to see where
    // a latency tail comes from.
    `--v8-flags=${
      ["--max-semi-space-size=4", Deno.env.get("MQTTWK_HARDENING_V8_FLAGS")]
        .filter((f) => f).join(",")
    }`,
    ...(o.denoFlags ?? []),
    // For profiling the broker under attack, e.g.
    // MQTTWK_HARDENING_DENO_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
    ...(Deno.env.get("MQTTWK_HARDENING_DENO_FLAGS")?.split(" ").filter((f) => f) ?? []),
    "main.ts",
    "--port",
    String(tcpPort),
    "--host",
    "127.0.0.1",
    "--persistence",
    "memory",
    `--mqttwk.broker.websocket-enabled=${o.websocket ? "true" : "false"}`,
    ...(o.websocket ? [`--mqttwk.broker.websocket-port=${wsPort}`] : []),
    ...(o.args ?? []),
  ];
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: BROKER_ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  let crashes = 0;
  let status: Deno.CommandStatus | undefined;
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const d = new TextDecoder();
    for await (const c of s) {
      const piece = d.decode(c, { stream: true });
      crashes += crashSigns(piece);
      text += piece;
      // A fuzz makes the broker log a line per refused connection: keep the start (the
      // listening lines) and the latest part, not hundreds of MB.
      if (text.length > LOG_CAP) {
        text = text.slice(0, 65536) + "\n[...]\n" + text.slice(-LOG_CAP / 2);
      }
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]).catch(() => {});
  const done = child.status.then((s) => (status = s));
  const finished = async () => {
    const s = await done;
    await pumps;
    return s.code;
  };

  try {
    for (const port of [tcpPort, wsPort]) {
      if (port === undefined) continue;
      await waitFor(async () => {
        if (status) throw new Error(`broker exited (${status.code}) before listening:\n${text}`);
        return await accepts(port);
      }, { what: `the broker to listen on ${port}`, timeout: 20_000, detail: () => text });
    }
  } catch (e) {
    if (!status) child.kill("SIGKILL");
    await finished();
    throw e;
  }
  return {
    pid: child.pid,
    host: "127.0.0.1",
    port: tcpPort,
    wsPort,
    wsPath: "/mqtt",
    logs: () => text,
    crashSigns: () => crashes,
    exited: () => status,
    cpuSeconds: () => cpuSecondsOf(child.pid),
    rss: () => {
      const rss = rssOf(child.pid);
      // Without procfs every memory bound would pass unmeasured: fail instead.
      if (rss === 0 && !status) throw new Error(`no VmRSS in /proc/${child.pid}/status`);
      return rss;
    },
    stop: async () => {
      if (status) return await finished();
      child.kill("SIGTERM");
      const timer = setTimeout(() => {
        if (!status) child.kill("SIGKILL");
      }, 10_000);
      const code = await finished();
      clearTimeout(timer);
      return code;
    },
  };
}

export { freePort };

/** CPU seconds (utime + stime) of process `pid`, from /proc (at USER_HZ = 100). */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name, which may hold spaces, closed by the last ")".
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/** Samples a broker's RSS in the background until stopped; keeps the peak. */
export class RssSampler {
  peak = 0;
  last = 0;
  readonly #timer: ReturnType<typeof setInterval>;
  constructor(readonly broker: BrokerProcess, intervalMs = 100) {
    this.sample();
    this.#timer = setInterval(() => this.sample(), intervalMs);
  }
  sample(): number {
    this.last = this.broker.rss();
    if (this.last > this.peak) this.peak = this.last;
    return this.last;
  }
  stop(): void {
    clearInterval(this.#timer);
    this.sample();
  }
}
