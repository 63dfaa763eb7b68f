/**
 * Adds, updates and removes users in a password file (mosquitto_passwd format, $7$ hashes).
 *
 *   deno task passwd <file> <user> [password]     add or update; the file is created if missing
 *   deno task passwd --delete <file> <user>        remove (-D works too)
 *   --iterations N                                  PBKDF2 rounds (default 10000)
 *
 * Without a password argument it is asked for twice on a terminal (not echoed), or read from the
 * first line of standard input otherwise, which keeps it out of shell history and `ps`.
 * The file is replaced atomically (write, then rename) with mode 600.
 */
import {
  DEFAULT_ITERATIONS,
  hashPassword,
  MAX_ITERATIONS,
  updatePasswordFileText,
} from "../src/auth/password_file.ts";

const USAGE = `usage:
  passwd.ts [--iterations N] <file> <user> [password]
  passwd.ts --delete <file> <user>`;

class UsageError extends Error {}

async function readHidden(prompt: string): Promise<string> {
  const enc = new TextEncoder();
  await Deno.stderr.write(enc.encode(prompt));
  Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  try {
    const buf = new Uint8Array(1);
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      const b = buf[0];
      if (b === 0x03) throw new Error("interrupted");
      if (b === 0x0d || b === 0x0a) break;
      if (b === 0x7f || b === 0x08) bytes.pop();
      else bytes.push(b);
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(enc.encode("\n"));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** Asks twice on a terminal (not echoed); else the first line of standard input. */
export async function readPassword(): Promise<string> {
  if (Deno.stdin.isTerminal()) {
    const a = await readHidden("Password: ");
    const b = await readHidden("Reenter password: ");
    if (a !== b) throw new Error("passwords do not match");
    return a;
  }
  const text = await new Response(Deno.stdin.readable).text();
  return text.split(/\r?\n/)[0];
}

export async function run(args: string[], password?: () => Promise<string>): Promise<number> {
  let del = false;
  let iterations = DEFAULT_ITERATIONS;
  const pos: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--delete" || a === "-D") del = true;
    else if (a === "--iterations" || a.startsWith("--iterations=")) {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : args[++i];
      iterations = Number(v);
      if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
        throw new UsageError(`--iterations must be an integer from 1 to ${MAX_ITERATIONS}`);
      }
    } else if (a.startsWith("-") && a.length > 1) throw new UsageError(`unknown option ${a}`);
    else pos.push(a);
  }
  if (pos.length < 2 || pos.length > (del ? 2 : 3)) {
    throw new UsageError("wrong number of arguments");
  }
  const [file, user] = pos;
  // ":" separates the user from the hash; control characters would break the line format.
  // deno-lint-ignore no-control-regex
  if (user === "" || user.includes(":") || /[\x00-\x1f\x7f]/.test(user)) {
    throw new UsageError("a username must be non-empty, without ':' or control characters");
  }

  let text = "";
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    if (del) {
      console.error(`${file} does not exist`);
      return 1;
    }
  }

  let entry = null;
  if (!del) {
    const pw = pos[2] ?? await (password ?? readPassword)();
    if (pw === "") throw new Error("empty password refused");
    entry = await hashPassword(pw, iterations);
  }
  const result = updatePasswordFileText(text, user, entry);
  if (del && !result.found) {
    console.error(`user ${user} not found in ${file}`);
    return 1;
  }
  const tmp = `${file}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(tmp, result.text, { mode: 0o600 });
  await Deno.rename(tmp, file);
  console.error(
    del
      ? `removed ${user} from ${file}`
      : `${result.found ? "updated" : "added"} ${user} in ${file}`,
  );
  console.error("send the broker SIGHUP to load the change");
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await run(Deno.args));
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`passwd: ${e.message}\n${USAGE}`);
      Deno.exit(2);
    }
    console.error(`passwd: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
