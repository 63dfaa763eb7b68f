/**
 * What the password-file tool (passwd.ts) and the SCRAM-user tool (scram_user.ts) share: their
 * arguments, the password prompt, and the atomic rewrite of the file. Each tool brings how it
 * turns a password into a secret and how it edits its file's text.
 */

export class UsageError extends Error {}

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
async function readPassword(): Promise<string> {
  if (Deno.stdin.isTerminal()) {
    const a = await readHidden("Password: ");
    const b = await readHidden("Reenter password: ");
    if (a !== b) throw new Error("passwords do not match");
    return a;
  }
  const text = await new Response(Deno.stdin.readable).text();
  return text.split(/\r?\n/)[0];
}

/** What one tool does differently. */
export interface UserFileTool<E> {
  defaultIterations: number;
  minIterations: number;
  maxIterations: number;
  /** Shown after the lowest count in the --iterations error, e.g. the standard that sets it. */
  minIterationsNote?: string;
  /** Whether the password counts as empty (after whatever normalization the secret applies). */
  isEmpty(password: string): boolean;
  secret(password: string, iterations: number): Promise<E>;
  /** The file text with the user's line set (null: removed), and whether the user was there. */
  update(text: string, user: string, secret: E | null): { text: string; found: boolean };
}

/** Runs `tool` on the command line `args`; returns the exit code, throws UsageError for usage. */
export async function runUserFileTool<E>(
  tool: UserFileTool<E>,
  args: string[],
  password?: () => Promise<string>,
): Promise<number> {
  let del = false;
  let iterations = tool.defaultIterations;
  const pos: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--delete" || a === "-D") del = true;
    else if (a === "--iterations" || a.startsWith("--iterations=")) {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : args[++i];
      iterations = Number(v);
      if (
        !Number.isSafeInteger(iterations) || iterations < tool.minIterations ||
        iterations > tool.maxIterations
      ) {
        const note = tool.minIterationsNote ? ` (${tool.minIterationsNote})` : "";
        throw new UsageError(
          `--iterations must be an integer from ${tool.minIterations}${note} to ${tool.maxIterations}`,
        );
      }
    } else if (a.startsWith("-") && a.length > 1) throw new UsageError(`unknown option ${a}`);
    else pos.push(a);
  }
  if (pos.length < 2 || pos.length > (del ? 2 : 3)) {
    throw new UsageError("wrong number of arguments");
  }
  const [file, user] = pos;
  // ":" separates the user from the secret; control characters would break the line format.
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

  let secret: E | null = null;
  if (!del) {
    const pw = pos[2] ?? await (password ?? readPassword)();
    if (tool.isEmpty(pw)) throw new Error("empty password refused");
    secret = await tool.secret(pw, iterations);
  }
  const result = tool.update(text, user, secret);
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

/** The tool's entry point: exit 2 with the usage on a usage error, 1 on any other error. */
export async function main(
  name: string,
  usage: string,
  run: (args: string[]) => Promise<number>,
): Promise<never> {
  try {
    Deno.exit(await run(Deno.args));
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`${name}: ${e.message}\n${usage}`);
      Deno.exit(2);
    }
    console.error(`${name}: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
