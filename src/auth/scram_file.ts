/**
 * The SCRAM verifier file (`mqttwk.broker.auth.scram-file`): one `user:verifier` line per user,
 * the verifier in RFC 5803's form, as PostgreSQL stores it too:
 *
 *   alice:SCRAM-SHA-256$4096:<salt b64>$<StoredKey b64>:<ServerKey b64>
 *
 * It sits beside the password file rather than in it: a PBKDF2-SHA512 hash of the password file
 * cannot serve as SCRAM keys, and the keys here cannot check a plain password.
 */
import {
  b64decode,
  b64encode,
  hmac,
  MAX_ITERATIONS,
  MIN_ITERATIONS,
  SALT_BYTES,
  type ScramUsers,
  type ScramVerifier,
} from "./scram.ts";
import { parseUserLines, setUserLine } from "./user_lines.ts";

const PREFIX = "SCRAM-SHA-256$";

export class ScramFileError extends Error {
  override name = "ScramFileError";
}

export function formatVerifier(v: ScramVerifier): string {
  return `${PREFIX}${v.iterations}:${b64encode(v.salt)}$${b64encode(v.storedKey)}:${
    b64encode(v.serverKey)
  }`;
}

export function parseVerifier(text: string): ScramVerifier {
  const m = /^SCRAM-SHA-256\$(\d+):([^$:]+)\$([^$:]+):([^$:]+)$/.exec(text);
  if (m === null) {
    throw new ScramFileError("expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>");
  }
  const iterations = Number(m[1]);
  if (!Number.isSafeInteger(iterations) || iterations < MIN_ITERATIONS) {
    throw new ScramFileError(`iteration count ${m[1]} below ${MIN_ITERATIONS} (RFC 7677)`);
  }
  if (iterations > MAX_ITERATIONS) {
    throw new ScramFileError(`iteration count ${m[1]} above ${MAX_ITERATIONS}`);
  }
  try {
    const v = {
      iterations,
      salt: b64decode(m[2]),
      storedKey: b64decode(m[3]),
      serverKey: b64decode(m[4]),
    };
    if (v.storedKey.length !== 32 || v.serverKey.length !== 32) {
      throw new ScramFileError("StoredKey and ServerKey must be 32 bytes (SHA-256)");
    }
    return v;
  } catch (e) {
    if (e instanceof ScramFileError) throw e;
    throw new ScramFileError("bad base64 in the verifier");
  }
}

/** Parses the file; comments (#) and blank lines are skipped. Errors name the line. */
export function parseScramFile(text: string, path = "SCRAM file"): Map<string, ScramVerifier> {
  return parseUserLines(text, path, "verifier", parseVerifier, (m) => new ScramFileError(m));
}

/**
 * Returns the file text with `user` set to `v` (or removed when v is null), keeping other lines,
 * comments and order; a new user is appended.
 */
export function updateScramFileText(
  text: string,
  user: string,
  v: ScramVerifier | null,
): { text: string; found: boolean } {
  return setUserLine(text, user, v && formatVerifier(v));
}

/** The users of one SCRAM file, re-read on reload (SIGHUP). */
export class ScramFileUsers implements ScramUsers {
  #users = new Map<string, ScramVerifier>();
  #fakeKey = new Uint8Array(32);
  #fakeIterations = MIN_ITERATIONS;

  constructor(readonly path: string) {}

  /** Reads the file; the returned function installs it, so a reload is all-or-nothing. */
  async load(): Promise<() => void> {
    let text: string;
    let users: Map<string, ScramVerifier>;
    try {
      text = await Deno.readTextFile(this.path);
      users = parseScramFile(text, this.path);
    } catch (e) {
      throw new Error(`SCRAM file ${this.path}: ${(e as Error).message}`);
    }
    // The fake salts derive from the file's secret content: the same on every node that shares
    // the file and across restarts, so asking twice (or two nodes) does not tell an unknown user.
    const key = new Uint8Array(
      await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`fake salts\n${text}`)),
    );
    const iterations = commonest([...users.values()].map((v) => v.iterations));
    return () => {
      this.#users = users;
      this.#fakeKey = key;
      this.#fakeIterations = iterations ?? MIN_ITERATIONS;
    };
  }

  get userCount(): number {
    return this.#users.size;
  }

  lookup(username: string): ScramVerifier | undefined {
    return this.#users.get(username);
  }

  async fake(username: string): Promise<{ salt: Uint8Array; iterations: number }> {
    const mac = await hmac(this.#fakeKey, new TextEncoder().encode(username));
    return { salt: mac.slice(0, SALT_BYTES), iterations: this.#fakeIterations };
  }
}

/** The most frequent value, so an unknown user's count looks like most real users' counts. */
function commonest(values: number[]): number | undefined {
  const counts = new Map<number, number>();
  let best: number | undefined;
  for (const v of values) {
    const n = (counts.get(v) ?? 0) + 1;
    counts.set(v, n);
    if (best === undefined || n > counts.get(best)!) best = v;
  }
  return best;
}
