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

/** A loopback TCP port nobody listens on right now. */
export function freePort(hostname = "127.0.0.1"): number {
  const l = Deno.listen({ hostname, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

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
