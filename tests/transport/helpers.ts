/** Shared pieces of the listener tests: throw-away certificates, ports from logs, binaries. */
import type { Broker } from "../helpers/broker.ts";

const REPO_ROOT = new URL("../../", import.meta.url).pathname;
const CI = Deno.env.get("CI") === "true";

export interface TestCerts {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  /** Signed by `ca`, CN "alice". */
  clientCert: string;
  clientKey: string;
  /** Self-signed, CN "mallory": not trusted by the broker. */
  untrustedCert: string;
  untrustedKey: string;
}

async function run(cmd: string, args: string[], cwd?: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
}

/** A CA, a server certificate for localhost/127.0.0.1 and two client certificates in a temp dir. */
export async function makeCerts(): Promise<TestCerts> {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-tls-" });
  await run("bash", [`${REPO_ROOT}scripts/gen-dev-cert.sh`, dir]);
  await issueClientCert(dir, "alice", "client");
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-sha256",
    "-days",
    "2",
    "-subj",
    "/CN=mallory",
    "-keyout",
    `${dir}/untrusted.key`,
    "-out",
    `${dir}/untrusted.pem`,
  ]); // deno-fmt-ignore
  return {
    dir,
    ca: `${dir}/ca.pem`,
    serverCert: `${dir}/server.pem`,
    serverKey: `${dir}/server.key`,
    clientCert: `${dir}/client.pem`,
    clientKey: `${dir}/client.key`,
    untrustedCert: `${dir}/untrusted.pem`,
    untrustedKey: `${dir}/untrusted.key`,
  };
}

/**
 * A client certificate signed by the dir's CA. It must be X.509 v3 with clientAuth: the TLS
 * stack under node:tls in Deno (rustls/webpki) rejects v1 certificates as unverifiable.
 */
export async function issueClientCert(dir: string, cn: string, name: string): Promise<void> {
  await Deno.writeTextFile(
    `${dir}/${name}.ext`,
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n" +
      "extendedKeyUsage=clientAuth\n",
  );
  await run("openssl", [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-sha256",
    "-subj",
    `/CN=${cn}`,
    "-keyout",
    `${dir}/${name}.key`,
    "-out",
    `${dir}/${name}.csr`,
  ]); // deno-fmt-ignore
  await run("openssl", [
    "x509", "-req", "-sha256", "-days", "2", "-in", `${dir}/${name}.csr`,
    "-CA", `${dir}/ca.pem`, "-CAkey", `${dir}/ca.key`, "-set_serial", String(Date.now()),
    "-extfile", `${dir}/${name}.ext`, "-out", `${dir}/${name}.pem`,
  ]); // deno-fmt-ignore
}

/** Port of a listener, from the broker's `listening KIND ADDR:PORT` log line. */
export async function listenerPort(broker: Broker, kind: string, timeoutMs = 10_000) {
  const re = new RegExp(`listening ${kind} (\\S+):(\\d+)`);
  const logs = await broker.waitForLog(re, timeoutMs);
  return Number(logs.match(re)![2]);
}

/**
 * `ignore` value for a test that needs `path`: skip (saying why) when it is missing outside CI;
 * on CI (CI=true) the test runs and requireBinary() fails it.
 */
export function ignoreWithout(path: string, what: string): boolean {
  if (exists(path) || CI) return false;
  console.warn(`SKIPPING ${what} test: ${path} not found`);
  return true;
}

export function requireBinary(path: string, hint: string): void {
  if (!exists(path)) throw new Error(`${path} not found; ${hint}`);
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

export { freePort } from "../helpers/ports.ts";

/** Runs a command to completion with a deadline; returns exit code and output. */
export async function runFor(
  cmd: string,
  args: string[],
  timeoutMs = 10_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", stdin: "null" })
    .spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }, timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/** A byte stream client over any connected node socket: waits for bytes, never sleeps. */
export interface SocketReader {
  /** Resolves with everything received so far once it is at least `n` bytes. */
  bytes(n: number, timeoutMs?: number): Promise<Uint8Array>;
  /** Resolves when the socket has closed. */
  closed: Promise<void>;
}

/** Collects what `socket` receives. */
export function readerOf(socket: import("node:net").Socket): SocketReader {
  let got = new Uint8Array(0);
  let wake = () => {};
  let ended = false;
  socket.on("data", (chunk: Uint8Array) => {
    const next = new Uint8Array(got.length + chunk.length);
    next.set(got);
    next.set(chunk, got.length);
    got = next;
    wake();
  });
  const closed = new Promise<void>((resolve) =>
    socket.on("close", () => {
      ended = true;
      wake();
      resolve();
    })
  );
  socket.on("error", () => {});
  return {
    closed,
    async bytes(n, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while (got.length < n) {
        if (ended) throw new Error(`closed after ${got.length} of ${n} bytes`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`only ${got.length} of ${n} bytes arrived`);
        await new Promise<void>((r) => {
          // Not a fixed wait: the deadline, cut short by the next chunk or the close.
          const t = setTimeout(r, left);
          wake = () => {
            clearTimeout(t);
            r();
          };
        });
      }
      return got;
    },
  };
}

/** A masked client frame (RFC 6455 section 5.3), FIN set unless `fin` is false. */
export function clientFrame(opcode: number, payload: Uint8Array, fin = true): Uint8Array {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const out = new Uint8Array(2 + ext + 4 + len);
  out[0] = (fin ? 0x80 : 0) | opcode;
  out[1] = 0x80 | (ext === 0 ? len : ext === 2 ? 126 : 127);
  const dv = new DataView(out.buffer);
  if (ext === 2) dv.setUint16(2, len);
  if (ext === 8) dv.setBigUint64(2, BigInt(len));
  const mask = crypto.getRandomValues(new Uint8Array(4));
  out.set(mask, 2 + ext);
  for (let i = 0; i < len; i++) out[6 + ext + i] = payload[i] ^ mask[i & 3];
  return out;
}

/** An upgrade request for MQTT at `path`. */
export function upgradeRequest(path = "/mqtt", extra: Record<string, string> = {}): string {
  const headers: Record<string, string> = {
    host: "localhost",
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    "sec-websocket-version": "13",
    "sec-websocket-protocol": "mqtt",
    ...extra,
  };
  return `GET ${path} HTTP/1.1\r\n` +
    Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n";
}

/**
 * A WebSocket client over a connected socket: sends the upgrade, then MQTT bytes as masked
 * binary frames; `payload` collects the binary payloads the server sends (unmasked frames).
 */
export async function wsOver(socket: import("node:net").Socket) {
  const reader = readerOf(socket);
  socket.write(upgradeRequest());
  const text = () => new TextDecoder().decode(got);
  let got = await reader.bytes(12);
  while (!text().includes("\r\n\r\n")) got = await reader.bytes(got.length + 1);
  const headEnd = text().indexOf("\r\n\r\n") + 4;
  if (!text().startsWith("HTTP/1.1 101")) throw new Error(`upgrade refused: ${text()}`);
  return {
    send(bytes: Uint8Array) {
      socket.write(clientFrame(0x2, bytes));
    },
    /** Binary payload bytes from the server once there are at least `n`. */
    async payload(n: number): Promise<Uint8Array> {
      while (true) {
        const all = await reader.bytes(headEnd);
        const out: number[] = [];
        let i = headEnd;
        while (i + 2 <= all.length) {
          let len = all[i + 1] & 0x7f;
          let at = i + 2;
          if (len === 126) {
            len = (all[i + 2] << 8) | all[i + 3];
            at = i + 4;
          }
          if (at + len > all.length) break;
          if ((all[i] & 0x0f) === 0x2) out.push(...all.subarray(at, at + len));
          i = at + len;
        }
        if (out.length >= n) return new Uint8Array(out);
        await reader.bytes(all.length + 1);
      }
    },
    closed: reader.closed,
  };
}

/** Broker flags that turn on the TLS listener (any free port) with the test certificates. */
export function tlsBrokerArgs(
  c: { serverCert: string; serverKey: string },
  extra: string[] = [],
): string[] {
  return [
    `--mqttwk.broker.ssl-cert-file=${c.serverCert}`,
    `--mqttwk.broker.ssl-key-file=${c.serverKey}`,
    "--mqttwk.broker.ssl-port=0",
    ...extra,
  ];
}
