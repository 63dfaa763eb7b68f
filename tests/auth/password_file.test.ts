import assert from "node:assert/strict";
import {
  formatHash,
  hashPassword,
  parseHash,
  parsePasswordFile,
  updatePasswordFileText,
  verifyPassword,
} from "../../src/auth/password_file.ts";
import { run } from "../../scripts/passwd.ts";
import { tempDir } from "./fixtures.ts";

const enc = (s: string) => new TextEncoder().encode(s);

function which(bin: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${bin}`).isFile) return `${dir}/${bin}`;
    } catch { /* not here */ }
  }
  return undefined;
}
const MOSQUITTO_PASSWD = which("mosquitto_passwd");

Deno.test("a hashed password verifies, and only with the right password", async () => {
  const e = await hashPassword("s3cret", 1000);
  assert.match(formatHash(e), /^\$7\$1000\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$/);
  assert.equal(await verifyPassword(e, enc("s3cret")), true);
  assert.equal(await verifyPassword(e, enc("s3cret ")), false);
  assert.equal(await verifyPassword(e, enc("")), false);
  const again = await hashPassword("s3cret", 1000);
  assert.notEqual(formatHash(again), formatHash(e), "each hash gets its own salt");
});

Deno.test("a known $7$ line with mosquitto's 101 iterations verifies", async () => {
  // PBKDF2-HMAC-SHA512("password", salt = 12 zero bytes, 101 iterations, 64 bytes).
  const salt = new Uint8Array(12);
  const key = await crypto.subtle.importKey("raw", enc("password"), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = new Uint8Array(
    await crypto.subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-512", salt, iterations: 101 },
      key,
      512,
    ),
  );
  const line = formatHash({ kind: 7, iterations: 101, salt, hash: bits });
  assert.ok(line.startsWith("$7$101$AAAAAAAAAAAAAAAA$"));
  assert.equal(await verifyPassword(parseHash(line), enc("password")), true);
});

Deno.test("files written by mosquitto_passwd verify ($7$ and the older $6$)", {
  ignore: MOSQUITTO_PASSWD === undefined,
}, async () => {
  const dir = await tempDir();
  try {
    const file = `${dir}/pw`;
    const mp = (args: string[]) =>
      new Deno.Command(MOSQUITTO_PASSWD!, { args, stdout: "null", stderr: "piped" }).output();
    assert.equal((await mp(["-c", "-b", file, "alice", "wonderland"])).code, 0);
    assert.equal((await mp(["-H", "sha512", "-b", file, "bob", "builder"])).code, 0);
    const users = parsePasswordFile(await Deno.readTextFile(file), file);
    assert.equal(users.get("alice")!.kind, 7);
    assert.equal(users.get("bob")!.kind, 6);
    assert.equal(await verifyPassword(users.get("alice")!, enc("wonderland")), true);
    assert.equal(await verifyPassword(users.get("alice")!, enc("builder")), false);
    assert.equal(await verifyPassword(users.get("bob")!, enc("builder")), true);
    assert.equal(await verifyPassword(users.get("bob")!, enc("wonderland")), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("password files skip comments and blank lines and name the line of an error", () => {
  const users = parsePasswordFile(
    "# users\n\nalice:$7$101$AAAAAAAAAAAAAAAA$" + "A".repeat(86) + "==\r\n",
  );
  assert.deepEqual([...users.keys()], ["alice"]);
  assert.throws(() => parsePasswordFile("ok:$7$101$AAAA$AAAA\nbroken\n", "pw"), /pw line 2/);
  assert.throws(() => parsePasswordFile("a:plaintext\n", "pw"), /pw line 1: not a \$7\$/);
  assert.throws(() => parsePasswordFile("a:$7$0$AAAA$AAAA\n", "pw"), /out of range/);
  assert.throws(() => parsePasswordFile("a:$7$101$!!$AAAA\n", "pw"), /base64/);
});

Deno.test("updating the file text adds, replaces and removes one user, keeping the rest", async () => {
  const e = await hashPassword("x", 1);
  const start = "# header\nalice:$6$AAAA$BBBB\nbob:$6$CCCC$DDDD\n";
  const added = updatePasswordFileText(start, "carol", e);
  assert.equal(added.found, false);
  assert.ok(added.text.startsWith(start));
  assert.ok(added.text.endsWith(`carol:${formatHash(e)}\n`));
  const replaced = updatePasswordFileText(start, "alice", e);
  assert.equal(replaced.found, true);
  assert.equal(replaced.text, `# header\nalice:${formatHash(e)}\nbob:$6$CCCC$DDDD\n`);
  const removed = updatePasswordFileText(start, "alice", null);
  assert.equal(removed.text, "# header\nbob:$6$CCCC$DDDD\n");
  assert.equal(updatePasswordFileText("", "alice", null).found, false);
});

Deno.test("the passwd CLI adds, updates and deletes users in a file", async () => {
  const dir = await tempDir();
  const err = console.error;
  console.error = () => {};
  try {
    const file = `${dir}/passwords`;
    assert.equal(await run([file, "alice", "one"]), 0);
    assert.equal(await run(["--iterations", "2000", file, "bob", "two"]), 0);
    assert.equal(await run([file, "carol"], () => Promise.resolve("three")), 0);
    let users = parsePasswordFile(await Deno.readTextFile(file));
    assert.deepEqual([...users.keys()], ["alice", "bob", "carol"]);
    assert.equal(users.get("bob")!.iterations, 2000);
    assert.equal(await verifyPassword(users.get("carol")!, enc("three")), true);
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);

    assert.equal(await run([file, "alice", "uno"]), 0);
    users = parsePasswordFile(await Deno.readTextFile(file));
    assert.equal(await verifyPassword(users.get("alice")!, enc("uno")), true);
    assert.equal(await verifyPassword(users.get("alice")!, enc("one")), false);

    assert.equal(await run(["--delete", file, "bob"]), 0);
    assert.equal(await run(["-D", file, "bob"]), 1, "deleting a missing user fails");
    users = parsePasswordFile(await Deno.readTextFile(file));
    assert.deepEqual([...users.keys()], ["alice", "carol"]);

    await assert.rejects(() => run([file, "a:b", "pw"]), /username/);
    await assert.rejects(() => run([file]), /arguments/);
    await assert.rejects(() => run([file, "dave", ""]), /empty password/);
  } finally {
    console.error = err;
    await Deno.remove(dir, { recursive: true });
  }
});
