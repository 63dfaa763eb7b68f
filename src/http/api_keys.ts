/**
 * API keys of the HTTP API, stored hashed: one line per key, `name:role:sha256-hex`, in a file
 * under the data directory (or `mqttwk.http.api-keys-file`). A key is 32 random bytes, so a plain
 * SHA-256 is enough to make a leaked file useless (no dictionary to try); the key itself is shown
 * once, when it is created (`deno task api-key create <name> --role admin|read`).
 */
import { Buffer } from "node:buffer";
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** The two roles of the HTTP API. */
export type Role = "admin" | "read";

/** One stored key. */
export interface ApiKeyEntry {
  name: string;
  role: Role;
  /** SHA-256 of the key, hex. */
  hash: string;
}

/** A line of the keys file that cannot be read. */
export class ApiKeyFileError extends Error {
  override name = "ApiKeyFileError";
}

const NAME = /^[A-Za-z0-9_.@-]{1,64}$/;

/** Whether `name` may name a key (letters, digits, `_.@-`, at most 64). */
export function validKeyName(name: string): boolean {
  return NAME.test(name);
}

/** SHA-256 of a presented key, hex. */
export function hashKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** A new random key: `mqk_` and 43 base64url characters. */
export function newKey(): string {
  return `mqk_${randomBytes(32).toString("base64url")}`;
}

/** Reads the lines of a keys file (blank lines and `#` comments skipped). */
export function parseKeys(text: string, where: string): ApiKeyEntry[] {
  const out: ApiKeyEntry[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const [name, role, hash, extra] = line.split(":");
    if (
      extra !== undefined || !validKeyName(name ?? "") || (role !== "admin" && role !== "read") ||
      !/^[0-9a-f]{64}$/.test(hash ?? "")
    ) {
      throw new ApiKeyFileError(`${where}:${i + 1}: expected name:admin|read:<sha256 hex>`);
    }
    out.push({ name, role, hash });
  });
  return out;
}

/** The text of a keys file holding `entries`. */
export function formatKeys(entries: ApiKeyEntry[]): string {
  return "# MqttWk HTTP API keys (deno task api-key): name:role:sha256(key)\n" +
    entries.map((e) => `${e.name}:${e.role}:${e.hash}\n`).join("");
}

/** Looks presented keys up by hash, in constant time per comparison. */
export class ApiKeys {
  readonly #byHash = new Map<string, ApiKeyEntry>();

  constructor(entries: ApiKeyEntry[]) {
    for (const e of entries) this.#byHash.set(e.hash, e);
  }

  get size(): number {
    return this.#byHash.size;
  }

  /** The entry of `key`, or null. */
  find(key: string): ApiKeyEntry | null {
    const h = hashKey(key);
    const e = this.#byHash.get(h);
    if (!e) return null;
    // The map lookup already matched; the comparison keeps the check itself constant-time.
    return timingSafeEqual(Buffer.from(e.hash), Buffer.from(h)) ? e : null;
  }
}
