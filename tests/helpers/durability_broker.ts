/**
 * Helpers for the crash-durability end-to-end tests: a broker on a fixed data directory that can
 * be SIGKILLed and started again on the same port, a seeded random generator, and read-only
 * inspection of the SQLite store file.
 */
import { DatabaseSync } from "node:sqlite";
import { type Broker, startBroker } from "./broker.ts";
import { crashSigns, type Figures, PeakRss } from "./figures.ts";
import * as raw from "./raw.ts";
import { PacketType as T } from "./raw.ts";

/** The store file inside the data directory (src/store/sqlite_db.ts DB_FILE). */
export const DB_FILE = "mqttwk.db";

export interface DurableBrokerOptions {
  /** Data directory; a fresh temporary one by default (removed by `dispose`). */
  dir?: string;
  /** Extra flags, passed on every start. */
  args?: string[];
}

/** A broker process that can be killed and restarted on the same data directory and port. */
export class DurableBroker {
  readonly dir: string;
  readonly host = "127.0.0.1";
  #args: string[];
  #ownsDir: boolean;
  #port = 0;
  #current: Broker | null = null;
  /** Logs of the previous (stopped or killed) runs, each headed by a separator line. */
  #history = "";
  #runs = 0;
  /** Runs that ended without kill() or stop() asking: crashes. */
  #unplannedExits = 0;
  /** When the last kill() or stop() ended a run, for the recovery time of the next start. */
  #downSince: number | null = null;
  /** Per restart after a kill or stop: ms from the fault to the broker listening again. */
  readonly recoveries: number[] = [];
  readonly #rss = new PeakRss(() => (this.#current ? [this.#current.pid] : []));

  private constructor(dir: string, ownsDir: boolean, args: string[]) {
    this.dir = dir;
    this.#ownsDir = ownsDir;
    this.#args = args;
  }

  /** Creates the wrapper and starts the first run (on a free port, kept for the later runs). */
  static async start(opts: DurableBrokerOptions = {}): Promise<DurableBroker> {
    const ownsDir = opts.dir === undefined;
    const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "mqttwk-durability-" });
    const b = new DurableBroker(dir, ownsDir, opts.args ?? []);
    try {
      await b.restart();
    } catch (e) {
      await b.dispose();
      throw e;
    }
    return b;
  }

  get port(): number {
    return this.#port;
  }

  get running(): boolean {
    return this.#current !== null;
  }

  /** The broker of the current run. */
  get broker(): Broker {
    if (!this.#current) throw new Error("the broker is not running");
    return this.#current;
  }

  /** Logs of every run so far, oldest first. */
  logs(): string {
    return this.#history + (this.#current ? this.#header() + this.#current.logs() : "");
  }

  /** The last `n` lines of the logs of every run, for failure messages. */
  tail(n = 60): string {
    return this.logs().split("\n").slice(-n).join("\n");
  }

  #header(): string {
    return `----- run ${this.#runs} (port ${this.#port}, data dir ${this.dir}) -----\n`;
  }

  /** Starts a new run on the same data directory and (after the first run) the same port. */
  async restart(extraArgs: string[] = []): Promise<Broker> {
    if (this.#current) throw new Error("the broker is still running; kill() or stop() it first");
    const args = [
      "--port",
      String(this.#port),
      "--host",
      this.host,
      "--persistence",
      "sqlite",
      "--data-dir",
      this.dir,
      "--mqttwk.broker.durability=sync",
      "--mqttwk.broker.websocket-enabled=false",
      "--log-level",
      "debug",
      ...this.#args,
      ...extraArgs,
    ];
    this.#runs++;
    let b: Broker | undefined;
    // The port of a killed broker is free at once (SO_REUSEADDR), but allow a few retries.
    for (let attempt = 0;; attempt++) {
      try {
        b = await startBroker({ args });
        break;
      } catch (e) {
        const msg = (e as Error).message;
        if (attempt < 5 && this.#port !== 0 && /AddrInUse|address already in use/i.test(msg)) {
          // A retry interval: nothing to wait on but the kernel letting go of the port.
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        this.#history += this.#header() + msg + "\n";
        throw e;
      }
    }
    if (this.#downSince !== null) this.recoveries.push(performance.now() - this.#downSince);
    this.#downSince = null;
    if (this.#port === 0) this.#port = b.port;
    if (b.port !== this.#port) {
      await b.stop();
      throw new Error(`broker listened on ${b.port} instead of ${this.#port}`);
    }
    this.#current = b;
    return b;
  }

  /** SIGKILL: no shutdown code runs, exactly like a crash. */
  async kill(): Promise<void> {
    const b = this.#current;
    if (!b) return;
    if (b.exited()) this.#unplannedExits++;
    this.#rss.sample();
    await b.kill();
    this.#downSince = performance.now();
    this.#history += this.#header() + b.logs() + "----- SIGKILL -----\n";
    this.#current = null;
  }

  /** SIGTERM and wait for the exit; returns the exit code. */
  async stop(): Promise<number> {
    const b = this.#current;
    if (!b) return 0;
    if (b.exited()) this.#unplannedExits++;
    this.#rss.sample();
    const code = await b.stop();
    this.#downSince = performance.now();
    this.#history += this.#header() + b.logs() + `----- stopped (exit ${code}) -----\n`;
    this.#current = null;
    return code;
  }

  /**
   * The fault figures of every run so far: crashes (runs that ended on their own, escaped
   * exceptions or panics in the logs), the highest RSS of any run, and the longest time from a
   * kill or stop to the next run listening. The caller adds what it sent, acknowledged, lost.
   */
  faultFigures(): Pick<Figures, "crashes" | "peakRss" | "recoveryMs" | "note"> {
    this.#rss.sample();
    return {
      crashes: this.#unplannedExits + crashSigns(this.logs()),
      peakRss: this.#rss.peak > 0 ? this.#rss.peak : undefined,
      recoveryMs: this.recoveries.length > 0 ? Math.max(...this.recoveries) : undefined,
      note: `${this.#runs} runs, ${this.recoveries.length} restarts (recovery: the longest)`,
    };
  }

  /** Kills the broker if it runs and removes the data directory if this wrapper created it. */
  async dispose(): Promise<void> {
    this.#rss.stop();
    await this.kill();
    if (this.#ownsDir) await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  /** Opens a raw connection to the current run. */
  connect(
    opts: raw.ConnectOptions,
  ): Promise<{ client: raw.RawClient; connack: raw.Packet }> {
    return raw.rawConnect(this.host, this.port, opts);
  }
}

/**
 * Rows per table that belong to `clientId`, read from a copy of the store files (the database,
 * plus its WAL if a killed broker left one), opened read-only, so the data directory is never
 * touched. The broker must not be running.
 */
export async function rowsForClient(
  dir: string,
  clientId: string,
): Promise<Record<string, number>> {
  const copy = await Deno.makeTempDir({ prefix: "mqttwk-db-copy-" });
  try {
    for (const suffix of ["", "-wal"]) {
      try {
        await Deno.copyFile(`${dir}/${DB_FILE}${suffix}`, `${copy}/${DB_FILE}${suffix}`);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    // A read-only connection cannot replay a WAL without its -shm; one writable open (of the
    // copy) lets SQLite rebuild the index, then the counting is done read-only.
    const recover = new DatabaseSync(`${copy}/${DB_FILE}`);
    recover.exec("PRAGMA schema_version");
    recover.close();
    const db = new DatabaseSync(`${copy}/${DB_FILE}`, { readOnly: true });
    try {
      const out: Record<string, number> = {};
      for (const table of ["sessions", "subscriptions", "outbound", "inbound_qos2"]) {
        const r = db.prepare(`SELECT count(*) AS n FROM ${table} WHERE client_id = ?`).get(
          clientId,
        ) as { n: number };
        out[table] = Number(r.n);
      }
      return out;
    } finally {
      db.close();
    }
  } finally {
    await Deno.remove(copy, { recursive: true }).catch(() => {});
  }
}

/** Deterministic PRNG, so a failing kill point can be replayed from its seed. */
export { mulberry32 as seededRandom } from "./random.ts";

/** The seed from MQTTWK_DURABILITY_SEED, or a new one; printed so a run can be replayed. */
export function testSeed(label: string): number {
  const env = Deno.env.get("MQTTWK_DURABILITY_SEED");
  const seed = env ? Number(env) : Math.floor(Math.random() * 2 ** 31);
  console.log(`${label}: seed ${seed} (replay with MQTTWK_DURABILITY_SEED=${seed})`);
  return seed;
}

/** Subscribes a persistent (clean session 0) raw client, then disconnects it. */
export async function persistentSubscribe(
  b: DurableBroker,
  clientId: string,
  filter: string,
  qos: number,
): Promise<void> {
  const { client, connack } = await b.connect({ clientId, cleanSession: false });
  try {
    if (connack.returnCode !== 0) throw new Error(`CONNACK return code ${connack.returnCode}`);
    const granted = await raw.rawSubscribe(client, 1, [[filter, qos]]);
    if (granted[0] !== qos) throw new Error(`granted ${granted} instead of ${qos}`);
    await client.write(raw.disconnect(), true);
  } finally {
    await client.close();
  }
}

/**
 * Reads PUBLISH packets on a raw connection and completes their QoS 1/2 flows (PUBACK, or
 * PUBREC then PUBCOMP on PUBREL), until `done()` holds or nothing arrives for `idleMs`.
 * Returns every PUBLISH received, in order.
 */
export async function receiveAll(
  client: raw.RawClient,
  done: (got: raw.Packet[]) => boolean,
  idleMs = 1_500,
): Promise<raw.Packet[]> {
  const got: raw.Packet[] = [];
  while (!done(got)) {
    let p: raw.Packet;
    try {
      p = await client.next(idleMs);
    } catch (e) {
      if (/no packet from broker/.test((e as Error).message)) break;
      throw e;
    }
    if (p.type === T.PUBLISH) {
      got.push(p);
      if (p.qos === 1) await client.write(raw.puback(p.packetId!));
      else if (p.qos === 2) await client.write(raw.pubrec(p.packetId!));
    } else if (p.type === T.PUBREL) {
      await client.write(raw.pubcomp(p.packetId!));
    } else {
      throw new Error(`unexpected ${raw.describe(p)}`);
    }
  }
  return got;
}
