/**
 * Who is calling the HTTP API: an API key (`Authorization: Bearer <key>`, see api_keys.ts) or a
 * user of the password file (`Authorization: Basic`), with the role the configuration gives
 * (`mqttwk.http.admin-users`, `mqttwk.http.read-users`). Failed logins are limited per address.
 * With nothing configured the API is open, which the app allows on loopback only.
 */
import { createHash } from "node:crypto";
import { parsePasswordFile, type PasswordEntry, verifyPassword } from "../auth/password_file.ts";
import { DUMMY_ENTRY } from "../auth/password_file.ts";
import { ApiKeys, parseKeys, type Role } from "./api_keys.ts";
import type { HttpRequest } from "./server.ts";

/** Where the credentials come from. */
export interface HttpAuthSettings {
  /** The API keys file; a missing file means no keys. */
  keysFile: string;
  /** `auth.password-file`; empty: no Basic users. */
  passwordFile: string;
  adminUsers: readonly string[];
  readUsers: readonly string[];
}

/** An authenticated caller. */
export interface Principal {
  user: string;
  role: Role;
  via: "key" | "basic" | "open";
}

/** The outcome of checking one request's credentials. */
export type AuthResult =
  | { ok: true; principal: Principal }
  | { ok: false; status: 401 | 403 | 429; message: string; retryAfter?: number };

/** Failed logins allowed per address per window before 429. */
export const MAX_FAILURES = 10;
const FAILURE_WINDOW_MS = 60_000;
/** Addresses remembered for the failure limit (oldest forgotten first). */
const MAX_TRACKED = 10_000;
/** Successful Basic logins remembered, so each request does not pay a PBKDF2 run. */
const BASIC_CACHE = 256;
const BASIC_TTL_MS = 60_000;

/** Checks credentials; reload() re-reads the files (SIGHUP, or a changed keys file). */
export class HttpAuth {
  readonly #s: HttpAuthSettings;
  #keys = new ApiKeys([]);
  #keysMtime: number | null = null;
  #keysCheckedAt = 0;
  #passwords = new Map<string, PasswordEntry>();
  readonly #failures = new Map<string, { count: number; since: number }>();
  readonly #basicOk = new Map<string, { user: string; until: number }>();

  constructor(settings: HttpAuthSettings) {
    this.#s = settings;
  }

  /** Reads the keys and password files; throws with the file named when one is unreadable. */
  async reload(): Promise<void> {
    await this.#readKeys(true);
    if (this.#s.passwordFile) {
      const text = await Deno.readTextFile(this.#s.passwordFile);
      this.#passwords = parsePasswordFile(text, this.#s.passwordFile);
    }
    this.#basicOk.clear();
  }

  /** Whether any credential can log in: keys exist, or password-file users have a role. */
  get configured(): boolean {
    const roles = this.#s.adminUsers.length + this.#s.readUsers.length;
    return this.#keys.size > 0 || (this.#s.passwordFile !== "" && roles > 0);
  }

  /** Number of API keys loaded. */
  get keyCount(): number {
    return this.#keys.size;
  }

  async #readKeys(force: boolean): Promise<void> {
    const now = Date.now();
    if (!force && now - this.#keysCheckedAt < 1000) return;
    this.#keysCheckedAt = now;
    let mtime: number | null;
    try {
      mtime = (await Deno.stat(this.#s.keysFile)).mtime?.getTime() ?? 0;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      mtime = null;
    }
    if (!force && mtime === this.#keysMtime) return;
    this.#keysMtime = mtime;
    if (mtime === null) {
      this.#keys = new ApiKeys([]);
      return;
    }
    const text = await Deno.readTextFile(this.#s.keysFile);
    this.#keys = new ApiKeys(parseKeys(text, this.#s.keysFile));
  }

  /** Checks the request's Authorization header (see the module comment). */
  async authenticate(req: HttpRequest): Promise<AuthResult> {
    const host = hostOf(req.remoteAddress);
    const now = Date.now();
    const f = this.#failures.get(host);
    if (f && now - f.since < FAILURE_WINDOW_MS && f.count >= MAX_FAILURES) {
      return {
        ok: false,
        status: 429,
        message: "too many failed logins from this address; try again later",
        retryAfter: Math.ceil((f.since + FAILURE_WINDOW_MS - now) / 1000),
      };
    }
    const header = req.headers.get("authorization") ?? "";
    if (header === "") {
      if (!this.configured) {
        return { ok: true, principal: { user: "anonymous", role: "admin", via: "open" } };
      }
      return { ok: false, status: 401, message: "authentication required" };
    }
    const result = await this.#check(header);
    if (!result.ok && result.status === 401) this.#failed(host, now);
    return result;
  }

  async #check(header: string): Promise<AuthResult> {
    const sp = header.indexOf(" ");
    const scheme = header.slice(0, sp < 0 ? header.length : sp).toLowerCase();
    const value = sp < 0 ? "" : header.slice(sp + 1).trim();
    if (scheme === "bearer") {
      try {
        await this.#readKeys(false);
      } catch { /* keep the keys loaded last; reload() reports the file's problem */ }
      const e = this.#keys.find(value);
      if (!e) return { ok: false, status: 401, message: "unknown API key" };
      return { ok: true, principal: { user: e.name, role: e.role, via: "key" } };
    }
    if (scheme === "basic") {
      let decoded: string;
      try {
        decoded = new TextDecoder("utf-8", { fatal: true }).decode(
          Uint8Array.from(atob(value), (c) => c.charCodeAt(0)),
        );
      } catch {
        return { ok: false, status: 401, message: "malformed Basic credentials" };
      }
      const colon = decoded.indexOf(":");
      if (colon < 0) return { ok: false, status: 401, message: "malformed Basic credentials" };
      const user = decoded.slice(0, colon);
      const password = decoded.slice(colon + 1);
      if (!(await this.#verify(user, password))) {
        return { ok: false, status: 401, message: "wrong username or password" };
      }
      const role: Role | null = this.#s.adminUsers.includes(user)
        ? "admin"
        : this.#s.readUsers.includes(user)
        ? "read"
        : null;
      if (!role) {
        return {
          ok: false,
          status: 403,
          message: "this user has no HTTP API role (mqttwk.http.admin-users, read-users)",
        };
      }
      return { ok: true, principal: { user, role, via: "basic" } };
    }
    return { ok: false, status: 401, message: "use Authorization: Bearer or Basic" };
  }

  async #verify(user: string, password: string): Promise<boolean> {
    const id = createHash("sha256").update(`${user}\0${password}`).digest("hex");
    const now = Date.now();
    const hit = this.#basicOk.get(id);
    if (hit && hit.until > now && this.#passwords.has(user)) return true;
    const entry = this.#passwords.get(user);
    // An unknown user costs the same time as a known one.
    const ok = await verifyPassword(entry ?? DUMMY_ENTRY, new TextEncoder().encode(password));
    if (!ok || !entry) return false;
    if (this.#basicOk.size >= BASIC_CACHE) {
      this.#basicOk.delete(this.#basicOk.keys().next().value!);
    }
    this.#basicOk.set(id, { user, until: now + BASIC_TTL_MS });
    return true;
  }

  #failed(host: string, now: number): void {
    let f = this.#failures.get(host);
    if (!f || now - f.since >= FAILURE_WINDOW_MS) {
      f = { count: 0, since: now };
      this.#failures.delete(host);
      if (this.#failures.size >= MAX_TRACKED) {
        this.#failures.delete(this.#failures.keys().next().value!);
      }
      this.#failures.set(host, f);
    }
    f.count++;
  }
}

/** The address without its port: "1.2.3.4:5" → "1.2.3.4", "[::1]:5" → "::1". */
export function hostOf(address: string): string {
  if (address.startsWith("[")) return address.slice(1, address.indexOf("]"));
  const colon = address.lastIndexOf(":");
  return colon > 0 && address.indexOf(":") === colon ? address.slice(0, colon) : address;
}

/** Whether a configured host name or address is loopback only. */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
