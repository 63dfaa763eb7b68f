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
import {
  DEFAULT_ITERATIONS,
  makeVerifier,
  MAX_ITERATIONS,
  MIN_ITERATIONS,
  saslprep,
  type ScramVerifier,
} from "../src/auth/scram.ts";
import { updateScramFileText } from "../src/auth/scram_file.ts";
import { main, runUserFileTool, type UserFileTool } from "./user_file.ts";

const USAGE = `usage:
  scram_user.ts [--iterations N] <file> <user> [password]
  scram_user.ts --delete <file> <user>`;

const SCRAM_FILE: UserFileTool<ScramVerifier> = {
  defaultIterations: DEFAULT_ITERATIONS,
  minIterations: MIN_ITERATIONS,
  minIterationsNote: "RFC 7677",
  maxIterations: MAX_ITERATIONS,
  isEmpty: (pw) => saslprep(pw) === "",
  secret: makeVerifier,
  update: updateScramFileText,
};

export function run(args: string[], password?: () => Promise<string>): Promise<number> {
  return runUserFileTool(SCRAM_FILE, args, password);
}

if (import.meta.main) await main("scram-user", USAGE, run);
