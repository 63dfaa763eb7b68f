/**
 * One broker node for chaos scenarios: main.ts as a real child process on a fixed port and data
 * directory, so that it can be SIGKILLed and started again where its clients reconnect.
 */
import { waitFor } from "../helpers/wait.ts";
import { accepts, freePort } from "../helpers/ports.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const LOG_CAP = 1 << 20;

export { freePort };

/** A broker that can be killed and started again on the same port and data. */
export class ChaosNode {
  readonly host = "127.0.0.1";
  readonly port: number;
  readonly httpPort: number;
  readonly args: string[];
  #child: Deno.ChildProcess | null = null;
  #status: Deno.CommandStatus | undefined;
  #done: Promise<unknown> = Promise.resolve();
  /** Everything the node printed, over all its lives (capped). */
  #log = "";
  /** What the current life printed. */
  #lifeLog = "";
  starts = 0;

  /** `args`: extra main.ts flags (e.g. the data dir, persistence). */
  constructor(args: string[], port = freePort(), httpPort = freePort()) {
    this.args = args;
    this.port = port;
    this.httpPort = httpPort;
  }

  /** The output of all lives so far. */
  logs(): string {
    return this.#log;
  }

  /** The output of the current (or last) life. */
  lifeLogs(): string {
    return this.#lifeLog;
  }

  /** The exit status of the current life, once it has exited. */
  exited(): Deno.CommandStatus | undefined {
    return this.#status;
  }

  /** Starts a life; resolves once it listens (or rejects if it exits first). */
  async start(): Promise<void> {
    this.spawn();
    await waitFor(async () => {
      if (this.#status) {
        await this.#done;
        throw new Error(`broker exited (${this.#status.code}) before listening:\n${this.#lifeLog}`);
      }
      return await accepts(this.port);
    }, { what: `the broker to listen on ${this.port}`, timeout: 30_000, detail: () => this.#log });
  }

  /** Starts a life without waiting for it to listen (to watch it refuse to start). */
  spawn(): void {
    if (this.#child && !this.#status) throw new Error("the node is running");
    this.starts++;
    this.#status = undefined;
    this.#lifeLog = "";
    const child = this.#child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--v8-flags=--max-semi-space-size=4",
        "main.ts",
        "--host",
        this.host,
        "--port",
        String(this.port),
        "--mqttwk.broker.websocket-enabled=false",
        "--mqttwk.broker.http-enabled=true",
        `--server.port=${this.httpPort}`,
        ...this.args,
      ],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const pump = async (s: ReadableStream<Uint8Array>) => {
      const d = new TextDecoder();
      for await (const c of s) {
        const piece = d.decode(c, { stream: true });
        this.#lifeLog += piece;
        this.#log += piece;
        if (this.#log.length > LOG_CAP) this.#log = this.#log.slice(-LOG_CAP / 2);
        if (this.#lifeLog.length > LOG_CAP) this.#lifeLog = this.#lifeLog.slice(-LOG_CAP / 2);
      }
    };
    const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]).catch(() => {});
    this.#done = child.status.then(async (s) => {
      this.#status = s;
      await pumps;
    });
  }

  /** Resolves with the exit status once the current life has ended. */
  async wait(): Promise<Deno.CommandStatus> {
    await this.#done;
    return this.#status!;
  }

  /** Sends `signal` to the process (SIGKILL by default) and waits for it to end. */
  async kill(signal: Deno.Signal = "SIGKILL"): Promise<void> {
    if (!this.#child || this.#status) return;
    this.#child.kill(signal);
    await this.#done;
  }

  /** Graceful stop (SIGTERM; SIGKILL after 15 s). */
  async stop(): Promise<void> {
    if (!this.#child || this.#status) return;
    this.#child.kill("SIGTERM");
    const t = setTimeout(() => this.#child?.kill("SIGKILL"), 15_000);
    await this.#done;
    clearTimeout(t);
  }

  /** GET on the node's HTTP port: status and body. */
  async http(path: string): Promise<{ status: number; body: string }> {
    const r = await fetch(`http://${this.host}:${this.httpPort}${path}`);
    return { status: r.status, body: await r.text() };
  }
}
