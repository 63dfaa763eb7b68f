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
  type PasswordEntry,
  updatePasswordFileText,
} from "../src/auth/password_file.ts";
import { main, runUserFileTool, type UserFileTool } from "./user_file.ts";

const USAGE = `usage:
  passwd.ts [--iterations N] <file> <user> [password]
  passwd.ts --delete <file> <user>`;

const PASSWORD_FILE: UserFileTool<PasswordEntry> = {
  defaultIterations: DEFAULT_ITERATIONS,
  minIterations: 1,
  maxIterations: MAX_ITERATIONS,
  isEmpty: (pw) => pw === "",
  secret: hashPassword,
  update: updatePasswordFileText,
};

export function run(args: string[], password?: () => Promise<string>): Promise<number> {
  return runUserFileTool(PASSWORD_FILE, args, password);
}

if (import.meta.main) await main("passwd", USAGE, run);
