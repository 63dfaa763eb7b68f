/**
 * mosquitto_passwd-compatible password files: one `user:hash` per line, where hash is
 * `$7$<iterations>$<salt b64>$<hash b64>` (PBKDF2-HMAC-SHA512, 64-byte output; mosquitto writes
 * 101 iterations) or mosquitto 1.x's `$6$<salt b64>$<hash b64>` (SHA-512 of password || salt),
 * so files written by either tool work here and files written here work in mosquitto.
 */
import { constantTimeEqual } from "./rsa.ts";
import { parseUserLines, setUserLine } from "./user_lines.ts";

export interface PasswordEntry {
  kind: 6 | 7;
  iterations: number;
  salt: Uint8Array<ArrayBuffer>;
  hash: Uint8Array;
}

/** What the CLI writes: far above mosquitto's 101, yet cheap enough for a burst of reconnects. */
export const DEFAULT_ITERATIONS = 10_000;
/** Refuses absurd counts that would stall every CONNECT of that user. */
export const MAX_ITERATIONS = 10_000_000;
const SALT_BYTES = 12;
const HASH_BYTES = 64;

export class PasswordFileError extends Error {
  override name = "PasswordFileError";
}

function b64decode(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function b64encode(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

export function parseHash(text: string): PasswordEntry {
  const f = text.split("$");
  try {
    if (f.length === 5 && f[0] === "" && f[1] === "7") {
      const iterations = Number(f[2]);
      if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
        throw new PasswordFileError(`iteration count ${f[2]} out of range`);
      }
      return { kind: 7, iterations, salt: b64decode(f[3]), hash: b64decode(f[4]) };
    }
    if (f.length === 4 && f[0] === "" && f[1] === "6") {
      return { kind: 6, iterations: 1, salt: b64decode(f[2]), hash: b64decode(f[3]) };
    }
  } catch (e) {
    if (e instanceof PasswordFileError) throw e;
    throw new PasswordFileError("bad base64 in the hash");
  }
  throw new PasswordFileError("not a $7$ (PBKDF2-SHA512) or $6$ (SHA-512) hash");
}

export function formatHash(e: PasswordEntry): string {
  return e.kind === 7
    ? `$7$${e.iterations}$${b64encode(e.salt)}$${b64encode(e.hash)}`
    : `$6$${b64encode(e.salt)}$${b64encode(e.hash)}`;
}

/** Parses the file; comments (#) and blank lines are skipped. Errors name the line. */
export function parsePasswordFile(
  text: string,
  path = "password file",
): Map<string, PasswordEntry> {
  return parseUserLines(text, path, "hash", parseHash, (m) => new PasswordFileError(m));
}

async function digest(e: Omit<PasswordEntry, "hash">, password: Uint8Array): Promise<Uint8Array> {
  if (e.kind === 6) {
    const input = new Uint8Array(password.length + e.salt.length);
    input.set(password);
    input.set(e.salt, password.length);
    return new Uint8Array(await crypto.subtle.digest("SHA-512", input));
  }
  // Copied because Web Crypto's types want an ArrayBuffer-backed view.
  const raw = new Uint8Array(password);
  const key = await crypto.subtle.importKey("raw", raw, "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-512", salt: e.salt, iterations: e.iterations },
    key,
    HASH_BYTES * 8,
  );
  return new Uint8Array(bits);
}

export async function hashPassword(
  password: string,
  iterations = DEFAULT_ITERATIONS,
): Promise<PasswordEntry> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const e = { kind: 7 as const, iterations, salt };
  return { ...e, hash: await digest(e, new TextEncoder().encode(password)) };
}

export async function verifyPassword(e: PasswordEntry, password: Uint8Array): Promise<boolean> {
  return constantTimeEqual(await digest(e, password), e.hash);
}

/** A fixed entry to hash against for unknown users, so their timing matches a known user's. */
export const DUMMY_ENTRY: PasswordEntry = {
  kind: 7,
  iterations: DEFAULT_ITERATIONS,
  salt: new Uint8Array(SALT_BYTES),
  hash: new Uint8Array(HASH_BYTES),
};

/**
 * Returns the file text with `user` set to `entry` (or removed when entry is null), keeping other
 * lines, comments and order; a new user is appended.
 */
export function updatePasswordFileText(
  text: string,
  user: string,
  entry: PasswordEntry | null,
): { text: string; found: boolean } {
  return setUserLine(text, user, entry && formatHash(entry));
}
