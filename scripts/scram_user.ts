/**
 * Adds, updates and removes users in a SCRAM verifier file (mqttwk.broker.auth.scram-file).
 *
 *   deno task scram-user <file> <user> [password]     add or update; the file is created if missing
 *   deno task scram-user --delete <file> <user>        remove (-D works too)
 *   --iterations N                                      PBKDF2 rounds (default 4096, at least 4096)
 *
 * Without a password argument it is asked for twice on a terminal (not echoed), or read from the
 * first line of standard input otherwise, which keeps it out of shell history and `ps`. Only the
 * salted verifier is written, never the password. The file is replaced atomically (write, then
 * rename) with mode 600.
 */
import { readPassword } from "./passwd.ts";
import {
  DEFAULT_ITERATIONS,
  makeVerifier,
  MAX_ITERATIONS,
  MIN_ITERATIONS,
  saslprep,
} from "../src/auth/scram.ts";
import { updateScramFileText } from "../src/auth/scram_file.ts";

const USAGE = `usage:
  scram_user.ts [--iterations N] <file> <user> [password]
  scram_user.ts --delete <file> <user>`;

class UsageError extends Error {}

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
      if (
        !Number.isSafeInteger(iterations) || iterations < MIN_ITERATIONS ||
        iterations > MAX_ITERATIONS
      ) {
        throw new UsageError(
          `--iterations must be an integer from ${MIN_ITERATIONS} (RFC 7677) to ${MAX_ITERATIONS}`,
        );
      }
    } else if (a.startsWith("-") && a.length > 1) throw new UsageError(`unknown option ${a}`);
    else pos.push(a);
  }
  if (pos.length < 2 || pos.length > (del ? 2 : 3)) {
    throw new UsageError("wrong number of arguments");
  }
  const [file, user] = pos;
  // ":" separates the user from the verifier; control characters would break the line format.
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

  let verifier = null;
  if (!del) {
    const pw = pos[2] ?? await (password ?? readPassword)();
    if (saslprep(pw) === "") throw new Error("empty password refused");
    verifier = await makeVerifier(pw, iterations);
  }
  const result = updateScramFileText(text, user, verifier);
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
      console.error(`scram-user: ${e.message}\n${USAGE}`);
      Deno.exit(2);
    }
    console.error(`scram-user: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
