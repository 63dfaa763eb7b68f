/**
 * Starts the MqttWk broker (main.ts) as a subprocess for end-to-end tests.
 *
 * With env MQTTWK_TEST_URL=mqtt://host:port the whole suite targets that external broker instead
 * (e.g. a reference Mosquitto): startBroker() then returns its address, stop()/kill() do nothing,
 * and tests that need broker flags or broker logs must be skipped with `ignore: EXTERNAL`.
 */

/** URL of an external broker to test instead of spawning MqttWk, or undefined. */
export const EXTERNAL_URL: string | undefined = Deno.env.get("MQTTWK_TEST_URL") || undefined;
/** True when the suite runs against an external broker (flags and logs are not available). */
export const EXTERNAL: boolean = EXTERNAL_URL !== undefined;

const REPO_ROOT = new URL("../../", import.meta.url);
const LISTENING = /listening tcp (\S+):(\d+)/;
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;

export interface BrokerOptions {
  /** Extra command-line arguments for main.ts, e.g. "--mqttwk.broker.connect-timeout=1". */
  args?: string[];
  /** Extra environment variables for the broker process. */
  env?: Record<string, string>;
  /** Runs the broker under this open-file limit (soft and hard), through prlimit(1). */
  fileLimit?: number;
}

export interface Broker {
  host: string;
  port: number;
  /** mqtt://host:port */
  url: string;
  /** The broker's process id (0 for an external broker), for its memory figures. */
  pid: number;
  /** Whether the process has exited (false for an external broker). */
  exited(): boolean;
  /** Everything the broker wrote to stdout and stderr so far. */
  logs(): string;
  /** Resolves with the logs once they match `re`; rejects (with the logs) after `timeoutMs`. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM, wait for the exit, return the exit code (SIGKILL after 10 s). */
  stop(): Promise<number>;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
}

export function startBroker(opts: BrokerOptions = {}): Promise<Broker> {
  if (EXTERNAL_URL !== undefined) return Promise.resolve(externalBroker(EXTERNAL_URL));
  return spawnBroker(opts);
}

function externalBroker(url: string): Broker {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, "");
  const port = Number(u.port || "1883");
  return {
    host,
    port,
    url: `mqtt://${u.hostname}:${port}`,
    pid: 0,
    exited: () => false,
    logs: () => "",
    waitForLog: () =>
      Promise.reject(new Error("broker logs are not available with MQTTWK_TEST_URL")),
    stop: () => Promise.resolve(0),
    kill: () => Promise.resolve(),
  };
}

async function spawnBroker(opts: BrokerOptions): Promise<Broker> {
  const args = [
    "run",
    "--allow-all",
    "main.ts",
    "--port",
    "0",
    "--host",
    "127.0.0.1",
    "--persistence",
    "memory",
    "--mqttwk.broker.websocket-enabled=false",
    ...(opts.args ?? []),
  ];
  const limited = opts.fileLimit !== undefined;
  const child = new Deno.Command(limited ? "prlimit" : Deno.execPath(), {
    args: limited
      ? [`--nofile=${opts.fileLimit}:${opts.fileLimit}`, Deno.execPath(), ...args]
      : args,
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1", ...opts.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  let text = "";
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      notify();
    }
    text += decoder.decode();
    notify();
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]).catch(() => {});
  let exited: Deno.CommandStatus | undefined;
  const status = child.status.then((s) => {
    exited = s;
    notify();
    return s;
  });
  const finished = async () => {
    const s = await status;
    await pumps;
    return s;
  };

  const waitFor = <T>(
    check: () => T | undefined,
    timeoutMs: number,
    what: string,
  ): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const done = () => {
        waiters.delete(test);
        clearTimeout(timer);
      };
      const test = () => {
        const v = check();
        if (v !== undefined) {
          done();
          resolve(v);
        } else if (exited) {
          done();
          reject(
            new Error(
              `broker exited (code ${exited.code}) while waiting for ${what}; logs:\n${text}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; logs:\n${text}`));
      }, timeoutMs);
      waiters.add(test);
      test();
    });

  let match: RegExpMatchArray;
  try {
    match = await waitFor(() => text.match(LISTENING) ?? undefined, START_TIMEOUT_MS, "listening");
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await finished();
    throw e;
  }
  let host = match[1].replace(/^\[|\]$/g, "");
  if (host === "0.0.0.0" || host === "::") host = "127.0.0.1";
  const port = Number(match[2]);

  const signal = async (sig: Deno.Signal): Promise<Deno.CommandStatus> => {
    if (!exited) {
      try {
        child.kill(sig);
      } catch { /* already exited */ }
    }
    return await finished();
  };

  return {
    host,
    port,
    url: `mqtt://${host.includes(":") ? `[${host}]` : host}:${port}`,
    pid: child.pid,
    exited: () => exited !== undefined,
    logs: () => text,
    waitForLog: (re, timeoutMs = 5_000) =>
      waitFor(() => (re.test(text) ? text : undefined), timeoutMs, `log ${re}`),
    stop: async () => {
      if (exited) {
        await pumps;
        return exited.code;
      }
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<"timeout">((r) => {
        timer = setTimeout(() => r("timeout"), STOP_TIMEOUT_MS);
      });
      const r = await Promise.race([finished(), timedOut]);
      clearTimeout(timer);
      if (r === "timeout") {
        const s = await signal("SIGKILL");
        return s.code;
      }
      return r.code;
    },
    kill: async () => {
      await signal("SIGKILL");
    },
  };
}

/** Unique prefix for topics and client ids, so tests never collide (also on a shared broker). */
export function uid(label = "t"): string {
  return `${label}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * A fixed wait, for when time passing is what the test is about (a keepalive, a TTL, "nothing
 * comes"). To wait for something to happen, wait for it: waitFor in ./wait.ts, an Inbox, a log.
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Registers a cleanup that `scoped` runs, last first, when its body ends. */
export type Defer = (cleanup: () => unknown) => void;

/** Runs `fn` with a `defer` to register cleanups, which run in reverse order even on failure. */
export async function scoped<T>(fn: (defer: Defer) => Promise<T>): Promise<T> {
  const cleanups: (() => unknown)[] = [];
  try {
    return await fn((c) => cleanups.push(c));
  } finally {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (e) {
        console.error("cleanup failed:", e);
      }
    }
  }
}
