/**
 * The runtime's floor for an idle TLS connection: a bare server (no MQTT, no broker) holds N idle
 * connections and reports its RSS growth per connection, for each way Deno offers to terminate
 * TLS. Whatever the broker adds on top of the best of these is ours.
 *
 *   deno run -A bench/tls_idle_floor.ts [--connections 2000] [--modes node-tls,deno-listentls,...]
 *
 * Modes (server side):
 * - `tcp`            node:net, plain TCP (the reference without TLS)
 * - `node-tls`       node:tls createServer, "data" listener (what the broker uses)
 * - `node-tls-wrap`  node:net server, each socket handed to a node:tls server ("connection")
 * - `deno-listentls` Deno.listenTls, one pending read of `--read` bytes per connection
 * (Deno.startTls only upgrades the client side of a connection, so an accepted TCP connection
 * cannot be turned into a TLS server connection that way.)
 * - `deno-listentls-noread` Deno.listenTls after the handshake, no read pending (not usable by a
 *   broker, which must read; shows what the TLS state itself costs)
 */
import tls from "node:tls";
import net from "node:net";
import type { Buffer } from "node:buffer";

/** `--name value` pairs. */
const args: Record<string, string | undefined> = {};
for (let i = 0; i < Deno.args.length; i += 2) {
  args[Deno.args[i].replace(/^--/, "")] = Deno.args[i + 1];
}

if (args.serve) {
  await serve(args.serve, Number(args.port), args.dir!, Number(args.read ?? 1024));
} else {
  await main();
}

async function serve(mode: string, port: number, dir: string, readSize: number): Promise<void> {
  const cert = Deno.readTextFileSync(`${dir}/server.pem`);
  const key = Deno.readTextFileSync(`${dir}/server.key`);
  let n = 0;
  const ready = () => console.log(`ready ${Deno.pid}`);
  const count = () => n++;
  const reader = async (c: Deno.Conn) => {
    count();
    const buf = new Uint8Array(readSize);
    try {
      while ((await c.read(buf)) !== null) { /* idle */ }
    } catch { /* closed */ }
  };
  switch (mode) {
    case "tcp": {
      const srv = net.createServer((s) => {
        s.setNoDelay(true);
        s.on("data", count);
        s.on("error", () => {});
      });
      srv.listen(port, "127.0.0.1", ready);
      break;
    }
    case "node-tls": {
      const srv = tls.createServer({ cert, key }, (s) => {
        s.setNoDelay(true);
        s.on("data", count);
        s.on("error", () => {});
      });
      srv.listen(port, "127.0.0.1", ready);
      break;
    }
    case "node-tls-wrap": {
      const t = tls.createServer({ cert, key }, (s) => {
        s.on("data", count);
        s.on("error", () => {});
      });
      const srv = net.createServer((raw) => {
        raw.setNoDelay(true);
        t.emit("connection", raw);
      });
      srv.listen(port, "127.0.0.1", ready);
      break;
    }
    case "deno-listentls":
    case "deno-listentls-noread": {
      const l = Deno.listenTls({ hostname: "127.0.0.1", port, cert, key });
      ready();
      for await (const c of l) {
        if (mode === "deno-listentls") reader(c);
        else c.handshake().then(count, () => {});
      }
      break;
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

function rssKiB(pid: number): number {
  const s = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(s)![1]);
}

async function main(): Promise<void> {
  const n = Number(args.connections ?? 2000);
  const modes = (args.modes ?? "tcp,node-tls,node-tls-wrap,deno-listentls,deno-starttls," +
      "deno-listentls-noread").split(",");
  const dir = Deno.makeTempDirSync();
  const gen = new URL("../scripts/gen-dev-cert.sh", import.meta.url).pathname;
  await new Deno.Command("bash", { args: [gen, dir], stdout: "null" }).output();
  const ca = Deno.readTextFileSync(`${dir}/ca.pem`);
  for (const mode of modes) {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = probe.addr.port;
    probe.close();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--v8-flags=--max-semi-space-size=4",
        new URL(import.meta.url).pathname,
        "--serve",
        mode,
        "--port",
        String(port),
        "--dir",
        dir,
        "--read",
        args.read ?? "1024",
      ],
      stdout: "piped",
    }).spawn();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const first = await lines.read();
    const pid = Number(/ready (\d+)/.exec(first.value ?? "")![1]);
    // Warm up: one connection so lazy runtime state (TLS config, code) is not counted.
    const warm = await open(mode, port, ca);
    await new Promise((r) => setTimeout(r, 300));
    const rss0 = rssKiB(pid);
    const socks: net.Socket[] = [warm];
    for (let i = 0; i < n; i += 32) {
      const batch = [];
      for (let k = i; k < Math.min(n, i + 32); k++) batch.push(open(mode, port, ca));
      socks.push(...await Promise.all(batch));
    }
    await new Promise((r) => setTimeout(r, 1500));
    const rss1 = rssKiB(pid);
    console.log(
      `${mode.padEnd(22)} ${n} idle: ${((rss1 - rss0) / n).toFixed(2)} KiB/connection ` +
        `(RSS ${rss0} -> ${rss1} KiB)`,
    );
    for (const s of socks) s.destroy();
    if (mode !== "tcp") {
      for (const resume of [false, true]) {
        const r = await handshakes(port, ca, pid, 500, resume);
        console.log(
          `${mode.padEnd(22)} handshakes TLS 1.3${resume ? " resumed" : "        "}: ` +
            `${r.rate.toFixed(0)}/s, server CPU ${r.cpuMs.toFixed(2)} ms each, ` +
            `${r.reused}/500 reused`,
        );
      }
    }
    child.kill("SIGTERM");
    await child.status;
    lines.releaseLock();
  }
  Deno.removeSync(dir, { recursive: true });
}

/** utime + stime of a process, in ms. */
function cpuMs(pid: number): number {
  const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** `n` connects (TLS 1.3), 16 at a time, each closed once established. */
async function handshakes(port: number, ca: string, pid: number, n: number, resume: boolean) {
  let session: Buffer | undefined;
  let reused = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const s = tls.connect({
        port,
        host: "127.0.0.1",
        ca,
        servername: "localhost",
        minVersion: "TLSv1.3",
        maxVersion: "TLSv1.3",
        ...(resume && session ? { session } : {}),
      }, () => {
        if (s.isSessionReused()) reused++;
        // TLS 1.3 tickets arrive after the handshake; give them a moment before closing.
        setTimeout(() => {
          s.destroy();
          resolve();
        }, 5);
      });
      s.on("session", (sess: Buffer) => session = sess);
      s.on("error", reject);
    });
  if (resume) await one();
  reused = 0;
  const c0 = cpuMs(pid);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next++ < n) await one();
  }));
  const secs = (performance.now() - t0) / 1000;
  return { rate: n / secs, cpuMs: (cpuMs(pid) - c0) / n, reused };
}

function open(mode: string, port: number, ca: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    if (mode === "tcp") {
      const s = net.connect(port, "127.0.0.1", () => resolve(s));
      s.on("error", reject);
      return;
    }
    const s = tls.connect({ port, host: "127.0.0.1", ca, servername: "localhost" }, () => {
      resolve(s);
    });
    s.on("error", reject);
  });
}
