/**
 * Connection generator for the conn-cluster scenario (bench/cluster_conn.ts), run as its own
 * process because one process can hold fewer than 20,000 sockets (the open-file limit).
 *
 *   deno run -A bench/conn_worker.ts --port P --count N --prefix w1 --addr-x 11 [--concurrency 64]
 *
 * It opens N idle MQTT 3.1.1 connections (clean session, keepalive 0, unique client ids) to one
 * broker, from source addresses 127.0.<addr-x>.<1..>, --per-addr per address, with at most
 * --concurrency connects in flight, each waiting for its CONNACK. Protocol with the parent:
 * JSON lines on stdout (`ready`, `progress`, `connected`, `status`, `closed`, `error`), commands
 * on stdin (`go`, `status`, `close`). It exits by itself when stdin ends or after --lifetime-s.
 *
 * `ConnectionSet` is also used in-process by cluster_conn.ts for the small limit check.
 */

import net from "node:net";
import { parseArgs } from "node:util";
import { encodeConnect } from "./mqtt_wire.ts";

export interface ConnectManyOptions {
  port: number;
  host?: string;
  count: number;
  clientId: (i: number) => string;
  /** Source address of connection i (node:net localAddress); default: the kernel's choice. */
  localAddress?: (i: number) => string;
  concurrency: number;
  /** Per connection, from connect() to CONNACK (default 30 s). */
  connackTimeoutMs?: number;
  /** performance.now() after which no new connect is started. */
  deadline?: number;
  /** Stop starting new connects after this many failures (default: never). */
  maxFailures?: number;
}

export interface ConnectManyResult {
  attempted: number;
  connected: number;
  failed: number;
  /** CONNACKs with a non-zero return code, by code ("rc3": n). */
  refused: Record<string, number>;
  /** Other failures (socket errors, timeouts), by message. */
  errors: Record<string, number>;
  firstError: string;
  seconds: number;
  /** True when the deadline or maxFailures stopped it before all were attempted. */
  stoppedEarly: boolean;
}

/** A set of raw MQTT connections that are opened and then left idle. */
export class ConnectionSet {
  readonly sockets: net.Socket[] = [];
  connected = 0;
  failed = 0;
  /** Accepted (CONNACK 0) connections the broker closed afterwards. */
  closedAfterConnack = 0;
  /** Refused (CONNACK != 0) connections the broker closed afterwards, as it should. */
  refusedClosedByPeer = 0;
  refused: Record<string, number> = {};
  errors: Record<string, number> = {};
  firstError = "";
  #stop = false;

  /** Connections still open after a successful CONNACK. */
  get open(): number {
    return this.connected - this.closedAfterConnack;
  }

  async connectMany(o: ConnectManyOptions): Promise<ConnectManyResult> {
    const t0 = performance.now();
    const deadline = o.deadline ?? Infinity;
    const maxFailures = o.maxFailures ?? Infinity;
    const connected0 = this.connected;
    const failed0 = this.failed;
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.max(1, Math.min(o.concurrency, o.count)) }, async () => {
        while (
          next < o.count && !this.#stop && performance.now() < deadline &&
          this.failed - failed0 < maxFailures
        ) {
          await this.#connectOne(o, next++);
        }
      }),
    );
    return {
      attempted: next,
      connected: this.connected - connected0,
      failed: this.failed - failed0,
      refused: { ...this.refused },
      errors: { ...this.errors },
      firstError: this.firstError,
      seconds: (performance.now() - t0) / 1000,
      stoppedEarly: next < o.count,
    };
  }

  #connectOne(o: ConnectManyOptions, i: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let done = false;
      let accepted = false;
      let refused = false;
      let got = 0;
      const head = new Uint8Array(4);
      const fail = (key: string, bucket: Record<string, number>) => {
        this.failed++;
        bucket[key] = (bucket[key] ?? 0) + 1;
        if (!this.firstError) this.firstError = key;
      };
      const finish = (ok: boolean, why?: string, rc?: number) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (ok) {
          accepted = true;
          this.connected++;
        } else if (rc !== undefined) {
          refused = true;
          fail(`rc${rc}`, this.refused);
        } else {
          fail(why ?? "failed", this.errors);
        }
        resolve();
      };
      const timer = setTimeout(
        () => finish(false, "CONNACK timeout"),
        o.connackTimeoutMs ?? 30_000,
      );
      const sock = net.connect({
        host: o.host ?? "127.0.0.1",
        port: o.port,
        ...(o.localAddress ? { localAddress: o.localAddress(i) } : {}),
      });
      this.sockets.push(sock);
      sock.on("connect", () => sock.write(encodeConnect(o.clientId(i), { keepAlive: 0 })));
      sock.on("data", (d: Uint8Array) => {
        if (done) return;
        for (let k = 0; k < d.length && got < 4; k++) head[got++] = d[k];
        if (got < 4) return;
        if (head[0] !== 0x20) finish(false, `unexpected packet 0x${head[0].toString(16)}`);
        else if (head[3] === 0) finish(true);
        else finish(false, undefined, head[3]);
      });
      sock.on("error", (e: Error & { code?: string }) => {
        // A reset after the CONNACK shows up as "close" too; only count errors before it.
        finish(false, e.code ?? e.message);
      });
      sock.on("close", () => {
        if (!done) finish(false, "closed before CONNACK");
        else if (accepted && !this.#stop) this.closedAfterConnack++;
        else if (refused) this.refusedClosedByPeer++;
      });
    });
  }

  /** Stops connecting and destroys every socket. */
  destroyAll(): void {
    this.#stop = true;
    for (const s of this.sockets) s.destroy();
  }
}

/** Open file descriptors and the soft limit of this process. */
export function fdUsage(): { open: number; limit: number } {
  const open = [...Deno.readDirSync("/proc/self/fd")].length;
  const limits = Deno.readTextFileSync("/proc/self/limits");
  const limit = Number(limits.match(/^Max open files\s+(\d+)/m)?.[1] ?? 1_000_000);
  return { open, limit };
}

function emit(o: Record<string, unknown>): void {
  console.log(JSON.stringify(o));
}

async function workerMain(): Promise<never> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string" },
      host: { type: "string", default: "127.0.0.1" },
      count: { type: "string" },
      prefix: { type: "string", default: "w" },
      "addr-x": { type: "string", default: "1" },
      "per-addr": { type: "string", default: "1000" },
      concurrency: { type: "string", default: "64" },
      "connect-deadline-s": { type: "string", default: "140" },
      "lifetime-s": { type: "string", default: "300" },
      /** Stop connecting after this many failures; default max(100, 1% of count). */
      "max-failures": { type: "string" },
    },
  });
  const port = Number(values.port);
  const count = Number(values.count);
  const addrX = Number(values["addr-x"]);
  const perAddr = Number(values["per-addr"]);
  const concurrency = Number(values.concurrency);
  const connectDeadlineMs = Number(values["connect-deadline-s"]) * 1000;
  const lifetimeMs = Number(values["lifetime-s"]) * 1000;
  const bad = [port, count, addrX, perAddr, concurrency, connectDeadlineMs, lifetimeMs]
    .some((n) => !Number.isFinite(n) || n < 0);
  if (bad || !(addrX >= 0 && addrX <= 255) || Math.ceil(count / perAddr) > 254) {
    emit({ type: "error", error: `bad arguments: ${Deno.args.join(" ")}` });
    Deno.exit(2);
  }
  const fds = fdUsage();
  if (fds.open + count > fds.limit - 50) {
    emit({
      type: "error",
      error: `${count} connections would exceed this process's ${fds.limit} open files ` +
        `(${fds.open} already open)`,
    });
    Deno.exit(2);
  }

  const set = new ConnectionSet();
  const exit = (code: number, type: string): never => {
    set.destroyAll();
    emit({ type });
    Deno.exit(code);
  };
  // Bounded no matter what the parent does.
  setTimeout(() => exit(3, "expired"), lifetimeMs);

  let startedAt = 0;
  const progress = setInterval(() => {
    if (!startedAt) return;
    emit({ type: "progress", connected: set.connected, failed: set.failed, open: set.open });
  }, 1000);

  const go = async () => {
    startedAt = performance.now();
    const r = await set.connectMany({
      port,
      host: values.host,
      count,
      clientId: (i) => `${values.prefix}-${i}`,
      localAddress: (i) => `127.0.${addrX}.${1 + Math.floor(i / perAddr)}`,
      concurrency,
      deadline: startedAt + connectDeadlineMs,
      maxFailures: values["max-failures"] !== undefined
        ? Number(values["max-failures"])
        : Math.max(100, Math.floor(count / 100)),
    });
    clearInterval(progress);
    emit({ type: "connected", ...r });
  };

  emit({ type: "ready", pid: Deno.pid, fds });
  const dec = new TextDecoder();
  let buf = "";
  let going: Promise<void> | null = null;
  for await (const chunk of Deno.stdin.readable) {
    buf += dec.decode(chunk, { stream: true });
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const cmd = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (cmd === "go" && !going) going = go();
      else if (cmd === "status") {
        emit({
          type: "status",
          connected: set.connected,
          open: set.open,
          closedByBroker: set.closedAfterConnack,
          failed: set.failed,
        });
      } else if (cmd === "close") exit(0, "closed");
    }
  }
  return exit(0, "closed"); // stdin ended: the parent is gone
}

if (import.meta.main) await workerMain();
