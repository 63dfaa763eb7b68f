/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677), server side, as an MQTT 5.0 enhanced authentication
 * method: the client proves it knows the password without sending it, and the server keeps only
 * a salted verifier per user (StoredKey, ServerKey, salt, iteration count), never the password.
 *
 *   CONNECT  (method SCRAM-SHA-256, data client-first-message)  n,,n=user,r=<client nonce>
 *   AUTH 0x18 (server-first-message)     r=<client nonce><server nonce>,s=<salt>,i=<iterations>
 *   AUTH 0x18 (client-final-message)     c=biws,r=<both nonces>,p=<ClientProof>
 *   CONNACK 0x00 (server-final-message)  v=<ServerSignature>      or CONNACK 0x87
 *
 * No channel binding (the method is not SCRAM-SHA-256-PLUS): gs2 flag "n", or "y" (the client
 * could bind but thinks we cannot, which is true, RFC 5802 §6); "p=" is refused.
 */
import type { AuthExchange, AuthStep } from "../broker/ports/auth.ts";
import { constantTimeEqual } from "./rsa.ts";

export const SCRAM_SHA_256 = "SCRAM-SHA-256";
/** RFC 7677 §4: at least 4096 iterations. */
export const MIN_ITERATIONS = 4096;
/**
 * What `deno task scram-user` writes: the RFC's minimum, as PostgreSQL does, because every
 * client (small devices included) computes the PBKDF2 on each connect.
 */
export const DEFAULT_ITERATIONS = 4096;
/** Refuses counts that would make every client's connect take minutes. */
export const MAX_ITERATIONS = 10_000_000;
export const SALT_BYTES = 16;

/** What the server keeps per user (RFC 5802 §3), never the password. */
export interface ScramVerifier {
  salt: Uint8Array<ArrayBuffer>;
  iterations: number;
  storedKey: Uint8Array;
  serverKey: Uint8Array;
}

/** Where the exchange finds users. */
export interface ScramUsers {
  lookup(username: string): ScramVerifier | undefined;
  /**
   * Salt and iteration count for a user that does not exist, the same on every attempt, so the
   * server-first-message does not tell (RFC 5802 §5.1).
   */
  fake(username: string): Promise<{ salt: Uint8Array; iterations: number }>;
}

const enc = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

export function b64encode(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** Strict base64 (RFC 4648 alphabet with padding); throws on anything else. */
export function b64decode(s: string): Uint8Array<ArrayBuffer> {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) {
    throw new Error("bad base64");
  }
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

/** HMAC-SHA-256. */
export async function hmac(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    new Uint8Array(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, new Uint8Array(data)));
}

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(data)));
}

/** RFC 4013 §2.3: controls, private use and the other prohibited code points. */
const PROHIBITED =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u001F\u007F-\u009F\u06DD\u070F\u180E\u200E\u200F\u2028-\u202E\u2060-\u2063\u206A-\u206F\uE000-\uF8FF\uFFF9-\uFFFD]/;

/** RFC 3454 table D.1: characters with bidirectional property R or AL (Unicode 3.2). */
const RAND_AL =
  /[\u05BE\u05C0\u05C3\u05D0-\u05EA\u05F0-\u05F4\u061B\u061F\u0621-\u063A\u0640-\u064A\u066D-\u066F\u0671-\u06D5\u06DD\u06E5\u06E6\u06FA-\u06FE\u0700-\u070D\u0710\u0712-\u072C\u0780-\u07A5\u07B1\u200F\uFB1D\uFB1F-\uFB28\uFB2A-\uFB36\uFB38-\uFB3C\uFB3E\uFB40\uFB41\uFB43\uFB44\uFB46-\uFBB1\uFBD3-\uFD3D\uFD50-\uFD8F\uFD92-\uFDC7\uFDF0-\uFDFC\uFE70-\uFE74\uFE76-\uFEFC]/;

/**
 * RFC 3454 table D.2 (bidirectional property L), for the characters it lists: letters, spacing
 * marks and letter numbers outside the right-to-left scripts. (JavaScript has no Bidi_Class
 * property escape, and D.2 is some 360 ranges; it differs from this only in a few symbols.)
 */
const L_CAT = /[\p{L}\p{Mc}\p{Nl}]/u;
const RTL_SCRIPT =
  /[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}]/u;

/**
 * RFC 4013 section 6 / RFC 3454 section 6: a string with a RandALCat character has no LCat
 * character, and starts and ends with a RandALCat character.
 */
function bidiOk(s: string): boolean {
  if (!RAND_AL.test(s)) return true;
  const chars = [...s];
  if (chars.some((c) => L_CAT.test(c) && !RAND_AL.test(c) && !RTL_SCRIPT.test(c))) return false;
  return RAND_AL.test(chars[0]) && RAND_AL.test(chars[chars.length - 1]);
}

/**
 * SASLprep (RFC 4013) as far as passwords need it: non-ASCII spaces become spaces, characters
 * "commonly mapped to nothing" go, NFKC; control and private-use characters are refused, and so
 * are strings breaking the bidirectional rule (RFC 4013 section 6: right-to-left characters mixed
 * with left-to-right ones, or not at both ends). The broker never sees passwords: the CLI and
 * clients apply it.
 */
export function saslprep(s: string): string {
  const mapped = s
    .replace(/[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g, " ")
    .replace(/[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/g, "")
    .normalize("NFKC");
  if (PROHIBITED.test(mapped)) {
    throw new Error("the password contains a character SASLprep prohibits");
  }
  if (!bidiOk(mapped)) {
    throw new Error(
      "the password mixes right-to-left and left-to-right text, or right-to-left text does not " +
        "start and end it (SASLprep, RFC 4013 section 6)",
    );
  }
  return mapped;
}

/** SaltedPassword = PBKDF2-HMAC-SHA-256(SASLprep(password), salt, iterations), 32 bytes. */
export async function saltedPassword(
  password: string,
  salt: Uint8Array,
  iterations: number,
): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey(
    "raw",
    enc.encode(saslprep(password)),
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: new Uint8Array(salt), iterations },
    key,
    256,
  );
  return new Uint8Array(bits);
}

/** The verifier of `password` (RFC 5802 §3): StoredKey = H(ClientKey), ServerKey. */
export async function makeVerifier(
  password: string,
  iterations = DEFAULT_ITERATIONS,
  salt: Uint8Array<ArrayBuffer> = crypto.getRandomValues(new Uint8Array(SALT_BYTES)),
): Promise<ScramVerifier> {
  const salted = await saltedPassword(password, salt, iterations);
  const clientKey = await hmac(salted, enc.encode("Client Key"));
  return {
    salt,
    iterations,
    storedKey: await sha256(clientKey),
    serverKey: await hmac(salted, enc.encode("Server Key")),
  };
}

/** saslname (RFC 5802 §5.1): "=2C" is ",", "=3D" is "="; any other "=" is malformed. */
function decodeSaslname(s: string): string | null {
  if (/=(?!2C|3D)/.test(s)) return null;
  return s.replace(/=2C/g, ",").replace(/=3D/g, "=");
}

/** A random server nonce: 24 printable characters (base64 has no ','). */
function randomNonce(): string {
  return b64encode(crypto.getRandomValues(new Uint8Array(18)));
}

/** Keys for unknown users: the work of a real check, a certain failure. */
const DUMMY_KEY = new Uint8Array(32);

/** Printable ASCII except ',' (RFC 5802 §5.1 "printable"). */
const NONCE = /^[\x21-\x2B\x2D-\x7E]+$/;

const failure = (reason: string): AuthStep => ({
  status: "failure",
  // Mosquitto answers a failed enhanced authentication with 0x87 too.
  reasonCode: 0x87,
  reason,
});

/** One SCRAM-SHA-256 exchange, server side. */
export class ScramServerExchange implements AuthExchange {
  #state: "first" | "final" | "done" = "first";
  #user = "";
  #verifier: ScramVerifier | undefined;
  #gs2Header = "";
  #clientFirstBare = "";
  #serverFirst = "";
  #nonce = "";

  /** `serverNonce` only for tests (the RFC's test vector has a fixed one). */
  constructor(
    private readonly users: ScramUsers,
    private readonly serverNonce: () => string = randomNonce,
  ) {}

  step(data: Uint8Array | undefined): Promise<AuthStep> {
    const state = this.#state;
    this.#state = state === "first" ? "final" : "done";
    let text: string;
    try {
      text = strictUtf8.decode(data ?? new Uint8Array(0));
    } catch {
      return Promise.resolve(failure("SCRAM message is not UTF-8"));
    }
    if (state === "first") return this.#first(text);
    if (state === "final") return this.#final(text);
    return Promise.resolve(failure("SCRAM exchange already finished"));
  }

  /** client-first-message → server-first-message. */
  async #first(text: string): Promise<AuthStep> {
    const m = /^(n|y|p=[^,]*),(a=[^,]*)?,(.*)$/s.exec(text);
    if (m === null) return failure("malformed SCRAM client-first-message");
    if (m[1].startsWith("p=")) return failure("SCRAM channel binding is not supported");
    const bare = m[3];
    const attrs = bare.split(",");
    // RFC 5802 §5.1: an unknown mandatory extension ("m=") fails the exchange.
    if (attrs[0].startsWith("m=")) return failure("SCRAM mandatory extension not supported");
    const wellFormed = attrs.every((a) => /^[A-Za-z]=/.test(a));
    if (!wellFormed || !attrs[0].startsWith("n=") || !attrs[1]?.startsWith("r=")) {
      return failure("malformed SCRAM client-first-message");
    }
    const user = decodeSaslname(attrs[0].slice(2));
    const clientNonce = attrs[1].slice(2);
    if (user === null || user === "" || !NONCE.test(clientNonce)) {
      return failure("malformed SCRAM client-first-message");
    }
    if (m[2] !== undefined && decodeSaslname(m[2].slice(2)) !== user) {
      return failure("SCRAM authorization identity other than the user");
    }
    this.#user = user;
    this.#gs2Header = text.slice(0, text.length - bare.length);
    this.#clientFirstBare = bare;
    this.#verifier = this.users.lookup(user);
    const { salt, iterations } = this.#verifier ?? await this.users.fake(user);
    this.#nonce = clientNonce + this.serverNonce();
    this.#serverFirst = `r=${this.#nonce},s=${b64encode(salt)},i=${iterations}`;
    return { status: "continue", data: enc.encode(this.#serverFirst) };
  }

  /** client-final-message → server-final-message, once the proof checks out. */
  async #final(text: string): Promise<AuthStep> {
    const at = text.lastIndexOf(",p=");
    if (at < 0) return failure("malformed SCRAM client-final-message");
    const withoutProof = text.slice(0, at);
    const attrs = withoutProof.split(",");
    if (attrs[0] !== `c=${b64encode(enc.encode(this.#gs2Header))}`) {
      return failure("SCRAM channel binding data does not match");
    }
    if (attrs[1] !== `r=${this.#nonce}`) return failure("SCRAM nonce does not match");
    let proof: Uint8Array;
    try {
      proof = b64decode(text.slice(at + 3));
    } catch {
      return failure("malformed SCRAM client proof");
    }
    const authMessage = enc.encode(
      `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`,
    );
    // An unknown user costs the same work and fails the same way as a wrong password.
    const v = this.#verifier;
    const storedKey = v?.storedKey ?? DUMMY_KEY;
    const signature = await hmac(storedKey, authMessage);
    const clientKey = new Uint8Array(32);
    for (let i = 0; i < 32; i++) clientKey[i] = (proof[i] ?? 0) ^ signature[i];
    const matches = constantTimeEqual(await sha256(clientKey), storedKey);
    if (v === undefined || proof.length !== 32 || !matches) {
      return failure("SCRAM authentication failed");
    }
    const serverSignature = await hmac(v.serverKey, authMessage);
    return {
      status: "success",
      username: this.#user,
      data: enc.encode(`v=${b64encode(serverSignature)}`),
    };
  }
}
