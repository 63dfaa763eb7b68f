/**
 * The C connect generator (connect_gen.c) for the `conn` scenario: built once with the machine's
 * C compiler into .cache/bench/, and run as its own process. Where no compiler is found the
 * scenario falls back to the node:net generator and its result says which one ran.
 */

const REPO_ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const SOURCE = `${REPO_ROOT}/bench/connect_gen.c`;
const BINARY = `${REPO_ROOT}/.cache/bench/connect_gen`;

let built: Promise<string | null> | undefined;

/**
 * Path of the built generator, or null when there is no C compiler (or MQTTWK_BENCH_CONNECT_GEN
 * is "node"). Rebuilt when the source is newer than the binary.
 */
export function connectGenerator(): Promise<string | null> {
  return built ??= build();
}

async function build(): Promise<string | null> {
  if (Deno.env.get("MQTTWK_BENCH_CONNECT_GEN") === "node") return null;
  const src = Deno.statSync(SOURCE).mtime?.getTime() ?? 0;
  try {
    if ((Deno.statSync(BINARY).mtime?.getTime() ?? 0) >= src) return BINARY;
  } catch {
    // not built yet
  }
  Deno.mkdirSync(`${REPO_ROOT}/.cache/bench`, { recursive: true });
  for (const cc of ["cc", "gcc", "clang"]) {
    try {
      const out = await new Deno.Command(cc, {
        args: ["-O2", "-o", BINARY, SOURCE],
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (out.success) return BINARY;
      console.error(
        `bench: ${cc} could not build connect_gen.c:\n${new TextDecoder().decode(out.stderr)}`,
      );
    } catch {
      // this compiler is not installed; try the next
    }
  }
  return null;
}

/** What the generator reports once every connect finished. */
export interface ConnectOutcome {
  connected: number;
  failed: number;
  seconds: number;
  firstError: string;
}

/** A running generator: its outcome, its pid (for CPU figures), and how to close its connections. */
export interface RunningConnectGen {
  pid: number;
  outcome: Promise<ConnectOutcome>;
  /** Closes every connection (the generator exits). */
  close(): Promise<void>;
}

/**
 * Starts `count` connects to 127.0.0.1:`port`, at most `concurrency` in flight, client ids
 * `prefix`<i>, connection i from `srcBase`.(1 + i / 1000).
 */
export function startConnectGen(
  binary: string,
  port: number,
  count: number,
  concurrency: number,
  prefix: string,
  srcBase: string,
): RunningConnectGen {
  const child = new Deno.Command(binary, {
    args: [String(port), String(count), String(concurrency), prefix, srcBase],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const stdin = child.stdin.getWriter();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const outcome = (async () => {
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("connect generator exited before reporting");
      text += value;
    }
    return JSON.parse(text.slice(0, text.indexOf("\n"))) as ConnectOutcome;
  })();
  return {
    pid: child.pid,
    outcome,
    async close() {
      await stdin.close().catch(() => {});
      await reader.cancel().catch(() => {});
      await child.status;
    },
  };
}
