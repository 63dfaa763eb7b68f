/** Helpers for the auth end-to-end tests (tests/e2e/auth_*.test.ts). */
import mqtt from "mqtt";
import type { IClientOptions } from "mqtt";
import { formatHash, hashPassword } from "../../src/auth/password_file.ts";

/** CONNACK code of a connection attempt with mqtt.js: 0 when it got in (then it disconnects). */
export async function connackCode(url: string, opts: IClientOptions = {}): Promise<number> {
  try {
    const c = await mqtt.connectAsync(url, {
      reconnectPeriod: 0,
      connectTimeout: 5_000,
      protocolVersion: 4,
      ...opts,
    });
    await c.endAsync();
    return 0;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "number") return code;
    throw e;
  }
}

/** Runs mosquitto_pub to completion, whatever its exit code. */
export async function runMosquittoPub(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("mosquitto_pub", {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const td = new TextDecoder();
  return { code: out.code, stdout: td.decode(out.stdout), stderr: td.decode(out.stderr) };
}

/**
 * The pid of the broker subprocess whose command line contains `marker` (a unique temp path
 * passed as a flag), so a test can send it SIGHUP; the broker helper does not expose its pid.
 */
export function brokerPid(marker: string): number {
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
      if (cmd.includes("main.ts") && cmd.some((a) => a.includes(marker))) return Number(e.name);
    } catch { /* gone or not ours */ }
  }
  throw new Error(`no broker process with ${marker} in its command line`);
}

export async function writeTemp(dir: string, name: string, text: string): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, text);
  return path;
}

/** A password file in which each user's password is `<user>-pw` (few rounds: quick to check). */
export async function passwordFile(users: string[]): Promise<string> {
  const lines = await Promise.all(
    users.map(async (u) => `${u}:${formatHash(await hashPassword(`${u}-pw`, 1000))}`),
  );
  return lines.join("\n") + "\n";
}
