/**
 * A data directory the broker cannot write (in Docker: a root-owned host directory bind-mounted
 * over /app/data, while the image runs as uid 1000) stops start-up with one clear line naming the
 * path and the chown that fixes it, not with a stack trace.
 */
import assert from "node:assert/strict";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/**
 * A directory this process cannot create files in: mode 0555 for an ordinary user; root ignores
 * modes, so for root the directory is made immutable (chattr +i), which refuses even root (EPERM),
 * or where that is not supported, a directory under /sys, which refuses root too.
 */
async function lockedDir(): Promise<{ dir: string; unlock: () => Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-locked-" });
  if (Deno.uid() !== 0) {
    await Deno.chmod(dir, 0o555);
    return { dir, unlock: () => Deno.chmod(dir, 0o755).then(() => Deno.remove(dir)) };
  }
  const chattr = async (flag: string) =>
    await new Deno.Command("chattr", { args: [flag, dir], stderr: "piped" }).output();
  const locked = await chattr("+i").catch(() => null);
  if (locked?.code === 0) {
    return { dir, unlock: () => chattr("-i").then(() => Deno.remove(dir, { recursive: true })) };
  }
  // No chattr, or a file system without the flag (overlayfs): sysfs refuses mkdir to root (EPERM).
  await Deno.remove(dir);
  return { dir: "/sys/mqttwk-locked-test", unlock: () => Promise.resolve() };
}

Deno.test("an unwritable data directory stops start-up with a message naming the uid to chown to", async () => {
  const { dir, unlock } = await lockedDir();
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        MAIN,
        "--host=127.0.0.1",
        "--port=0",
        "--mqttwk.broker.websocket-enabled=false",
        "--persistence=sqlite",
        `--data-dir=${dir}/data`,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, `exit code 1 (cannot start), output:\n${text}`);
    const uid = Deno.uid();
    assert.match(text, new RegExp(`data directory ${dir}/data .*not writable by uid ${uid}`));
    assert.ok(text.includes(`chown -R ${uid} ${dir}/data`), `names the fix:\n${text}`);
    assert.doesNotMatch(text, /^\s+at /m, "no stack trace");
  } finally {
    await unlock();
  }
});
