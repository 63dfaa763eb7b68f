/**
 * Authentication providers and the chain that asks them in order. A provider answers allow,
 * deny (with the CONNACK code it wants), ignore (no opinion, e.g. a user it does not know) or
 * error (it could not decide, e.g. the HTTP hook is down).
 */
import type { AuthRequest, AuthResult } from "../broker/ports/auth.ts";
import type { Logger } from "../log.ts";
import {
  DUMMY_ENTRY,
  parsePasswordFile,
  type PasswordEntry,
  verifyPassword,
} from "./password_file.ts";
import {
  looksLikeRsaPassword,
  parsePublicKeyPem,
  type RsaPublicKey,
  verifyRsaPassword,
} from "./rsa.ts";

export type Verdict =
  | { kind: "allow" }
  | { kind: "deny"; code: 4 | 5; why: string }
  | { kind: "ignore"; why: string }
  | { kind: "error"; why: string };

export interface Provider {
  readonly name: string;
  check(req: AuthRequest): Promise<Verdict>;
  /** Reads its files; the returned function installs the result, so a reload is all-or-nothing. */
  load?(): Promise<() => void>;
}

/** 3.1.1 CONNACK return codes. */
export const CONNACK_SERVER_UNAVAILABLE = 3;
export const CONNACK_BAD_CREDENTIALS = 4;
export const CONNACK_NOT_AUTHORIZED = 5;

const utf8 = new TextDecoder();

// --- RSA (original MqttWk) ------------------------------------------------------------------------

export class RsaProvider implements Provider {
  readonly name = "rsa";
  #key: RsaPublicKey | undefined;

  constructor(readonly path: string, key?: RsaPublicKey) {
    this.#key = key;
  }

  async load(): Promise<() => void> {
    let key: RsaPublicKey;
    try {
      key = parsePublicKeyPem(await Deno.readTextFile(this.path));
    } catch (e) {
      throw new Error(`RSA public key ${this.path}: ${(e as Error).message}`);
    }
    return () => (this.#key = key);
  }

  check(req: AuthRequest): Promise<Verdict> {
    if (!this.#key) return Promise.resolve({ kind: "error", why: "no key loaded" });
    if (req.username === undefined || req.password === undefined) {
      return Promise.resolve({ kind: "ignore", why: "no password" });
    }
    const password = utf8.decode(req.password);
    // Another provider's password is no RSA password at all: no opinion rather than a deny.
    if (!looksLikeRsaPassword(this.#key, password)) {
      return Promise.resolve({ kind: "ignore", why: "not an RSA password" });
    }
    const ok = verifyRsaPassword(this.#key, req.username, password);
    return Promise.resolve(
      ok ? { kind: "allow" } : { kind: "deny", code: CONNACK_BAD_CREDENTIALS, why: "no match" },
    );
  }
}

// --- Password file --------------------------------------------------------------------------------

export class PasswordFileProvider implements Provider {
  readonly name = "password-file";
  #users: Map<string, PasswordEntry>;

  constructor(readonly path: string, users?: Map<string, PasswordEntry>) {
    this.#users = users ?? new Map();
  }

  async load(): Promise<() => void> {
    let users: Map<string, PasswordEntry>;
    try {
      users = parsePasswordFile(await Deno.readTextFile(this.path), this.path);
    } catch (e) {
      throw new Error(`password file ${this.path}: ${(e as Error).message}`);
    }
    return () => (this.#users = users);
  }

  get userCount(): number {
    return this.#users.size;
  }

  async check(req: AuthRequest): Promise<Verdict> {
    if (req.username === undefined) return { kind: "ignore", why: "no username" };
    const entry = this.#users.get(req.username);
    const password = req.password ?? new Uint8Array(0);
    if (!entry) {
      // Same work as for a known user, so response time does not reveal which users exist.
      await verifyPassword(DUMMY_ENTRY, password);
      return { kind: "ignore", why: "unknown user" };
    }
    if (req.password === undefined) {
      await verifyPassword(DUMMY_ENTRY, password);
      return { kind: "deny", code: CONNACK_BAD_CREDENTIALS, why: "no password" };
    }
    return await verifyPassword(entry, password)
      ? { kind: "allow" }
      : { kind: "deny", code: CONNACK_BAD_CREDENTIALS, why: "wrong password" };
  }
}

// --- HTTP hook ------------------------------------------------------------------------------------

export interface HttpHookOptions {
  url: string;
  /** Seconds. */
  timeout: number;
  /** Seconds; 0 disables the cache. */
  cacheTtl: number;
  log: Logger;
  /** Entries kept at most; the oldest go first. */
  cacheSize?: number;
}

type Cached = { verdict: Verdict; expires: number };

/** The URL without user:password, for log lines. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    return u.toString();
  } catch {
    return "(invalid URL)";
  }
}

async function cacheKey(req: AuthRequest): Promise<string> {
  // Length-prefixed, so no two different triples serialise alike.
  const parts = [
    new TextEncoder().encode(req.clientId),
    req.username === undefined ? null : new TextEncoder().encode(req.username),
    req.password ?? null,
  ];
  const chunks: number[] = [];
  for (const p of parts) {
    if (p === null) chunks.push(0xff, 0xff, 0xff, 0xff);
    else {chunks.push(
        p.length >>> 24,
        (p.length >>> 16) & 255,
        (p.length >>> 8) & 255,
        p.length & 255,
        ...p,
      );}
  }
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(chunks)));
  return [...hash].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * POSTs the credentials as JSON (EMQX / VerneMQ style). 200 with {"result":"allow"} (or "ok"),
 * or an empty 200/204, allows; {"result":"deny"} or 401 denies with 0x04; 403 denies with 0x05;
 * {"result":"ignore"} passes to the next provider. Anything else, a timeout or a network error
 * is an error: the client is not let in on it.
 */
export class HttpHookProvider implements Provider {
  readonly name = "http";
  readonly #o: HttpHookOptions;
  readonly #cache = new Map<string, Cached>();
  readonly #shownUrl: string;
  #lastWarn = 0;
  #suppressed = 0;

  readonly #url: string;
  readonly #headers: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/json",
  };

  constructor(o: HttpHookOptions) {
    this.#o = o;
    this.#shownUrl = redact(o.url);
    // fetch refuses URLs with user:password, so they become a Basic Authorization header.
    const u = new URL(o.url);
    if (u.username || u.password) {
      const creds = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`;
      const bytes = new TextEncoder().encode(creds);
      this.#headers.authorization = `Basic ${btoa(String.fromCharCode(...bytes))}`;
    }
    this.#url = redact(o.url);
  }

  load(): Promise<() => void> {
    return Promise.resolve(() => this.#cache.clear());
  }

  get cacheEntries(): number {
    return this.#cache.size;
  }

  async check(req: AuthRequest): Promise<Verdict> {
    const ttlMs = this.#o.cacheTtl * 1000;
    const key = ttlMs > 0 ? await cacheKey(req) : "";
    if (ttlMs > 0) {
      const hit = this.#cache.get(key);
      if (hit && hit.expires > Date.now()) return hit.verdict;
      if (hit) this.#cache.delete(key);
    }
    const verdict = await this.#ask(req);
    // Errors are not cached, so the hook's recovery is seen at once.
    if (ttlMs > 0 && verdict.kind !== "error") {
      const max = this.#o.cacheSize ?? 10_000;
      while (this.#cache.size >= max) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(key, { verdict, expires: Date.now() + ttlMs });
    }
    return verdict;
  }

  async #ask(req: AuthRequest): Promise<Verdict> {
    const body = JSON.stringify({
      clientId: req.clientId,
      username: req.username ?? null,
      password: req.password === undefined ? null : utf8.decode(req.password),
      remoteAddress: req.remoteAddress,
      transport: req.transport,
      protocolVersion: req.protocolVersion,
    });
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.#url, {
        method: "POST",
        headers: this.#headers,
        body,
        signal: AbortSignal.timeout(this.#o.timeout * 1000),
      });
      text = await res.text();
    } catch (e) {
      const err = e as Error;
      const why = err.name === "TimeoutError"
        ? `no answer within ${this.#o.timeout} s`
        : `unreachable: ${err.message}`;
      return this.#failed(req, why);
    }
    if (res.status === 401) {
      return { kind: "deny", code: CONNACK_BAD_CREDENTIALS, why: "hook answered 401" };
    }
    if (res.status === 403) {
      return { kind: "deny", code: CONNACK_NOT_AUTHORIZED, why: "hook answered 403" };
    }
    if (res.status !== 200 && res.status !== 204) {
      return this.#failed(req, `answered HTTP ${res.status}`);
    }
    if (text.trim() === "") return { kind: "allow" };
    let result: unknown;
    try {
      result = (JSON.parse(text) as { result?: unknown })?.result;
    } catch {
      return this.#failed(req, "answered 200 with a body that is not JSON");
    }
    if (result === "allow" || result === "ok") return { kind: "allow" };
    if (result === "deny") {
      return { kind: "deny", code: CONNACK_BAD_CREDENTIALS, why: "hook denied" };
    }
    if (result === "ignore") return { kind: "ignore", why: "hook ignored" };
    return this.#failed(req, `answered 200 with unknown result ${JSON.stringify(result)}`);
  }

  #failed(req: AuthRequest, why: string): Verdict {
    // One line per second at most: during an outage every reconnecting client would log one.
    const now = Date.now();
    if (now - this.#lastWarn >= 1000) {
      const more = this.#suppressed ? ` (${this.#suppressed} similar lines suppressed)` : "";
      this.#o.log.warn(
        `auth hook ${this.#shownUrl} ${why}; client ${req.clientId} from ${req.remoteAddress} ` +
          `is not let in by it${more}`,
      );
      this.#lastWarn = now;
      this.#suppressed = 0;
    } else {
      this.#suppressed++;
    }
    return { kind: "error", why: `hook ${why}` };
  }
}

// --- Chain ----------------------------------------------------------------------------------------

/**
 * Asks providers in order; the first allow wins. Otherwise: 0x05 if one said "not authorized",
 * 0x04 if one denied or none had an opinion, and 0x03 (server unavailable) if the only answers
 * were errors, so a client does not take a hook outage for a wrong password.
 */
export async function runChain(
  providers: readonly Provider[],
  req: AuthRequest,
): Promise<AuthResult> {
  const notes: string[] = [];
  let code = 0;
  let errors = 0;
  for (const p of providers) {
    const v = await p.check(req);
    if (v.kind === "allow") return { ok: true, verified: true };
    notes.push(`${p.name}: ${v.why}`);
    if (v.kind === "deny") code = Math.max(code, v.code);
    if (v.kind === "error") errors++;
  }
  if (code === 0) code = errors > 0 ? CONNACK_SERVER_UNAVAILABLE : CONNACK_BAD_CREDENTIALS;
  const who = req.username === undefined ? "no username" : `user ${JSON.stringify(req.username)}`;
  const what = code === CONNACK_NOT_AUTHORIZED
    ? "not authorized"
    : code === CONNACK_SERVER_UNAVAILABLE
    ? "authentication unavailable"
    : "bad username or password";
  return { ok: false, reasonCode: code, reason: `${what} (${who}; ${notes.join(", ")})` };
}
