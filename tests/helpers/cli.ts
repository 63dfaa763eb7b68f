/**
 * Runs the Mosquitto command-line clients (Debian package mosquitto-clients) for end-to-end
 * tests. When a binary is missing, tests using it are skipped with a message, except on CI
 * (env CI=true), where they fail with a clear message instead.
 */

const CI = Deno.env.get("CI") === "true";

function findOnPath(bin: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    try {
      const p = `${dir}/${bin}`;
      if (Deno.statSync(p).isFile) return p;
    } catch { /* not here */ }
  }
  return undefined;
}

const PUB = findOnPath("mosquitto_pub");
const SUB = findOnPath("mosquitto_sub");
// mosquitto_sub block-buffers stdout into a pipe; stdbuf (coreutils) makes it line-buffered so
// its "received SUBACK" debug line and each message show up at once.
const STDBUF = findOnPath("stdbuf");

/** Why the CLI tests cannot run, or undefined when both binaries are present. */
export const CLI_MISSING: string | undefined = PUB && SUB
  ? undefined
  : `${
    [PUB ? "" : "mosquitto_pub", SUB ? "" : "mosquitto_sub"].filter(Boolean).join(" and ")
  } not found on PATH: install the Debian package mosquitto-clients (apt-get install -y mosquitto-clients)`;

let warned = false;
/**
 * Value for `ignore` of a Deno.test / t.step that uses the CLI clients: true (skip, with a
 * message) when they are missing outside CI; false otherwise, in which case requireCli() fails.
 */
export function ignoreWithoutCli(): boolean {
  if (!CLI_MISSING || CI) return false;
  if (!warned) {
    warned = true;
    console.warn(`SKIPPING mosquitto CLI tests: ${CLI_MISSING}`);
  }
  return true;
}

/** Throws a clear error when the CLI clients are missing (reached only on CI). */
export function requireCli(): void {
  if (CLI_MISSING) throw new Error(`CI=true and ${CLI_MISSING}`);
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const td = new TextDecoder();

/** Runs mosquitto_pub to completion; kills it after `timeoutMs` and fails. */
export async function mosquittoPub(args: string[], timeoutMs = 10_000): Promise<RunResult> {
  requireCli();
  const child = new Deno.Command(PUB!, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }, timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  const r = { code: out.code, stdout: td.decode(out.stdout), stderr: td.decode(out.stderr) };
  if (timedOut) {
    throw new Error(`mosquitto_pub ${args.join(" ")} timed out after ${timeoutMs} ms: ${r.stderr}`);
  }
  if (r.code !== 0) {
    throw new Error(`mosquitto_pub ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
  }
  return r;
}

export interface SubMessage {
  topic: string;
  qos: number;
  retain: boolean;
  payload: string;
}

export interface SubProcess {
  messages: SubMessage[];
  output(): string;
  /** Waits for `n` messages. */
  waitForCount(n: number, timeoutMs?: number): Promise<SubMessage[]>;
  /** Terminates the process (if still running) and waits for it. */
  stop(): Promise<void>;
}

const MARK = "MQTTWK-MSG"; // no "@" or "%": those are escapes in -F formats

/**
 * Starts mosquitto_sub with `args` (connection, -t, -q, -V ...) and resolves once its SUBACK
 * arrived (it runs with -d and a -F format of its own, so do not pass -v/-F/-d).
 */
export async function mosquittoSub(args: string[], readyTimeoutMs = 10_000): Promise<SubProcess> {
  requireCli();
  const subArgs = ["-d", "-F", `${MARK}|%t|%q|%r|%p`, ...args];
  const child = new Deno.Command(STDBUF ?? SUB!, {
    args: STDBUF ? ["-oL", SUB!, ...subArgs] : subArgs,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  let partial = "";
  const messages: SubMessage[] = [];
  const waiters = new Set<() => void>();
  let exited = false;
  const pump = async (stream: ReadableStream<Uint8Array>, parse: boolean) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      const s = dec.decode(chunk, { stream: true });
      text += s;
      if (parse) {
        partial += s;
        const lines = partial.split("\n");
        partial = lines.pop()!;
        for (const line of lines) {
          if (!line.startsWith(MARK + "|")) continue;
          const [, topic, qos, retain, ...rest] = line.split("|");
          messages.push({
            topic,
            qos: Number(qos),
            retain: retain === "1",
            payload: rest.join("|"),
          });
        }
      }
      for (const w of [...waiters]) w();
    }
  };
  const pumps = Promise.all([pump(child.stdout, true), pump(child.stderr, false)]);
  // The exit can be seen before the last stdout chunk is parsed (-C 1 prints and exits at once):
  // "exited" waits for both, or a waiter would give up on a message that is still in the pipe.
  const status = Promise.all([child.status, pumps]).then(([s]) => {
    exited = true;
    for (const w of [...waiters]) w();
    return s;
  });

  const wait = <T>(check: () => T | undefined, timeoutMs: number, what: string) =>
    new Promise<T>((resolve, reject) => {
      const test = () => {
        const v = check();
        if (v !== undefined || exited) {
          waiters.delete(test);
          clearTimeout(timer);
          if (v !== undefined) resolve(v);
          else reject(new Error(`mosquitto_sub exited while waiting for ${what}:\n${text}`));
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(test);
        reject(
          new Error(`mosquitto_sub: timed out after ${timeoutMs} ms waiting for ${what}:\n${text}`),
        );
      }, timeoutMs);
      waiters.add(test);
      test();
    });

  const stop = async () => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const t = new Promise<"t">((r) => (timer = setTimeout(() => r("t"), 3_000)));
    if ((await Promise.race([status, t])) === "t") {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
    }
    clearTimeout(timer);
    await status;
    await pumps;
  };

  try {
    await wait(() => (/received SUBACK/.test(text) ? true : undefined), readyTimeoutMs, "SUBACK");
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    messages,
    output: () => text,
    waitForCount: (n, timeoutMs = 5_000) =>
      wait(() => (messages.length >= n ? messages : undefined), timeoutMs, `${n} messages`),
    stop,
  };
}

/** The -h/-p (and -V) arguments for a broker URL. */
export function hostArgs(host: string, port: number): string[] {
  return ["-h", host, "-p", String(port)];
}

/**
 * `ignore` for a test that needs a program that may be missing (`available` false): skipped with
 * a warning outside CI; with CI=true it runs, and fails, since a missing tool must never pass.
 */
export function ignoreUnless(available: boolean, what: string): boolean {
  if (available || CI) return false;
  console.warn(`SKIPPING: ${what} is not installed`);
  return true;
}
