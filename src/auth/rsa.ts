/**
 * The original MqttWk password scheme: password = uppercase hex of the RSA "private-key
 * encryption" (PKCS#1 v1.5 block type 1, no DigestInfo) of the UTF-8 username, in blocks of
 * (modulus bytes - 11). The broker only ever needs the public key; the private half is for the
 * `auth-password` CLI.
 *
 * Keys are parsed from PEM with a minimal DER reader rather than node:crypto so that the exact
 * accepted formats (SPKI / PKCS#1 public, PKCS#8 / PKCS#1 private) are ours to test.
 */

export interface RsaPublicKey {
  n: bigint;
  e: bigint;
  /** Modulus length in bytes. */
  k: number;
}

export interface RsaPrivateKey extends RsaPublicKey {
  d: bigint;
}

// --- DER ------------------------------------------------------------------------------------------

interface Tlv {
  tag: number;
  value: Uint8Array;
  end: number;
}

function readTlv(buf: Uint8Array, at: number): Tlv {
  if (at + 2 > buf.length) throw new Error("truncated DER");
  const tag = buf[at];
  let len = buf[at + 1];
  let pos = at + 2;
  if (len & 0x80) {
    const count = len & 0x7f;
    if (count === 0 || count > 4 || pos + count > buf.length) throw new Error("bad DER length");
    len = 0;
    for (let i = 0; i < count; i++) len = len * 256 + buf[pos++];
  }
  if (pos + len > buf.length) throw new Error("truncated DER");
  return { tag, value: buf.subarray(pos, pos + len), end: pos + len };
}

/** The children of a constructed value (SEQUENCE). */
function children(seq: Uint8Array): Tlv[] {
  const out: Tlv[] = [];
  for (let at = 0; at < seq.length;) {
    const t = readTlv(seq, at);
    out.push(t);
    at = t.end;
  }
  return out;
}

function expectTag(t: Tlv | undefined, tag: number, what: string): Uint8Array {
  if (!t || t.tag !== tag) throw new Error(`expected ${what}`);
  return t.value;
}

function toBigInt(bytes: Uint8Array): bigint {
  let hex = "";
  for (const b of bytes) hex += b.toString(16).padStart(2, "0");
  return hex ? BigInt("0x" + hex) : 0n;
}

const SEQUENCE = 0x30;
const INTEGER = 0x02;
const BIT_STRING = 0x03;
const OCTET_STRING = 0x04;
const OID = 0x06;
/** 1.2.840.113549.1.1.1 */
const RSA_ENCRYPTION = "2a864886f70d010101";

function hexOf(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function publicKey(n: bigint, e: bigint): RsaPublicKey {
  if (n <= 0n || e <= 1n) throw new Error("invalid RSA key");
  return { n, e, k: Math.ceil(n.toString(16).length / 2) };
}

function checkRsaAlgorithm(algId: Uint8Array): void {
  const oid = expectTag(children(algId)[0], OID, "algorithm OID");
  if (hexOf(oid) !== RSA_ENCRYPTION) throw new Error("not an RSA key");
}

/** RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } */
function pkcs1Public(der: Uint8Array): RsaPublicKey {
  const [n, e] = children(expectTag(readTlv(der, 0), SEQUENCE, "RSAPublicKey"));
  return publicKey(
    toBigInt(expectTag(n, INTEGER, "modulus")),
    toBigInt(expectTag(e, INTEGER, "exponent")),
  );
}

function spkiPublic(der: Uint8Array): RsaPublicKey {
  const [algId, bits] = children(expectTag(readTlv(der, 0), SEQUENCE, "SubjectPublicKeyInfo"));
  checkRsaAlgorithm(expectTag(algId, SEQUENCE, "AlgorithmIdentifier"));
  const bitString = expectTag(bits, BIT_STRING, "subjectPublicKey");
  if (bitString[0] !== 0) throw new Error("unexpected unused bits in the public key");
  return pkcs1Public(bitString.subarray(1));
}

/** RSAPrivateKey ::= SEQUENCE { version, n, e, d, p, q, dp, dq, qinv } */
function pkcs1Private(der: Uint8Array): RsaPrivateKey {
  const f = children(expectTag(readTlv(der, 0), SEQUENCE, "RSAPrivateKey"));
  const int = (i: number) => toBigInt(expectTag(f[i], INTEGER, "RSAPrivateKey field"));
  return { ...publicKey(int(1), int(2)), d: int(3) };
}

function pkcs8Private(der: Uint8Array): RsaPrivateKey {
  const [, algId, key] = children(expectTag(readTlv(der, 0), SEQUENCE, "PrivateKeyInfo"));
  checkRsaAlgorithm(expectTag(algId, SEQUENCE, "AlgorithmIdentifier"));
  return pkcs1Private(expectTag(key, OCTET_STRING, "privateKey"));
}

// --- PEM ------------------------------------------------------------------------------------------

function pemBlocks(text: string): { label: string; der: Uint8Array }[] {
  const out: { label: string; der: Uint8Array }[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (const m of text.matchAll(re)) {
    const b64 = m[2].replace(/\s+/g, "");
    const bin = atob(b64);
    out.push({ label: m[1], der: Uint8Array.from(bin, (c) => c.charCodeAt(0)) });
  }
  return out;
}

/** Parses "PUBLIC KEY" (SubjectPublicKeyInfo) or "RSA PUBLIC KEY" (PKCS#1) PEM text. */
export function parsePublicKeyPem(text: string): RsaPublicKey {
  for (const { label, der } of pemBlocks(text)) {
    if (label === "PUBLIC KEY") return spkiPublic(der);
    if (label === "RSA PUBLIC KEY") return pkcs1Public(der);
  }
  throw new Error("no PUBLIC KEY or RSA PUBLIC KEY block found");
}

/** Parses "PRIVATE KEY" (PKCS#8, unencrypted) or "RSA PRIVATE KEY" (PKCS#1) PEM text. */
export function parsePrivateKeyPem(text: string): RsaPrivateKey {
  for (const { label, der } of pemBlocks(text)) {
    if (label === "PRIVATE KEY") return pkcs8Private(der);
    if (label === "RSA PRIVATE KEY") return pkcs1Private(der);
    if (label === "ENCRYPTED PRIVATE KEY") {
      throw new Error("encrypted private keys are not supported; decrypt it with openssl first");
    }
  }
  throw new Error("no PRIVATE KEY or RSA PRIVATE KEY block found");
}

export function toPem(label: string, der: ArrayBuffer | Uint8Array): string {
  const bytes = der instanceof Uint8Array ? der : new Uint8Array(der);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  const b64 = btoa(bin).replace(/.{1,64}/g, "$&\n");
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

// --- Arithmetic -----------------------------------------------------------------------------------

export function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let result = 1n;
  let b = base % mod;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % mod;
    b = (b * b) % mod;
    e >>= 1n;
  }
  return result;
}

function toBytes(x: bigint, k: number): Uint8Array {
  const hex = x.toString(16).padStart(k * 2, "0");
  const out = new Uint8Array(k);
  for (let i = 0; i < k; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function hexUpper(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s.toUpperCase();
}

/** Compares without an early exit, so timing does not reveal how much of a secret matched. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

// --- The scheme -----------------------------------------------------------------------------------

/** The password the original MqttWk expects for `username` (what its demo README printed). */
export function rsaPassword(key: RsaPrivateKey, username: string): string {
  const data = new TextEncoder().encode(username);
  const chunk = key.k - 11;
  if (chunk <= 0) throw new Error("RSA key too small");
  let out = "";
  for (let off = 0; off < data.length || off === 0; off += chunk) {
    const part = data.subarray(off, off + chunk);
    // EB = 00 || 01 || FF..FF || 00 || D, as OpenSSL's RSA_padding_add_PKCS1_type_1.
    const block = new Uint8Array(key.k).fill(0xff);
    block[0] = 0x00;
    block[1] = 0x01;
    block[key.k - part.length - 1] = 0x00;
    block.set(part, key.k - part.length);
    out += hexUpper(toBytes(modPow(toBigInt(block), key.d, key.n), key.k));
    if (data.length === 0) break;
  }
  return out;
}

/** Undoes type-1 padding of one decrypted block; null when the padding is not valid. */
function unpadType1(block: Uint8Array): Uint8Array | null {
  if (block[0] !== 0x00 || block[1] !== 0x01) return null;
  let i = 2;
  while (i < block.length && block[i] === 0xff) i++;
  // At least 8 bytes of FF (PKCS#1 v1.5), then the 00 separator.
  if (i - 2 < 8 || i >= block.length || block[i] !== 0x00) return null;
  return block.subarray(i + 1);
}

/** Whether `password` has the scheme's shape (hex, whole blocks), right or wrong. */
export function looksLikeRsaPassword(key: RsaPublicKey, password: string): boolean {
  return password.length > 0 && password.length % (key.k * 2) === 0 &&
    /^[0-9a-fA-F]+$/.test(password);
}

/** True when `password` (hex, either case) is the scheme's password for `username`. */
export function verifyRsaPassword(key: RsaPublicKey, username: string, password: string): boolean {
  const blockHex = key.k * 2;
  if (!looksLikeRsaPassword(key, password)) return false;
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let off = 0; off < password.length; off += blockHex) {
    const c = BigInt("0x" + password.slice(off, off + blockHex));
    if (c >= key.n) return false;
    const data = unpadType1(toBytes(modPow(c, key.e, key.n), key.k));
    if (data === null) return false;
    parts.push(data);
    total += data.length;
  }
  const joined = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    joined.set(p, at);
    at += p.length;
  }
  return constantTimeEqual(joined, new TextEncoder().encode(username));
}

/** A new RSA key pair as PEM (SPKI public, PKCS#8 private), via Web Crypto. */
export async function generateRsaKeyPair(
  bits = 2048,
): Promise<{ publicPem: string; privatePem: string }> {
  const pair = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: bits,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
  const spki = await crypto.subtle.exportKey("spki", pair.publicKey);
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", pair.privateKey);
  return { publicPem: toPem("PUBLIC KEY", spki), privatePem: toPem("PRIVATE KEY", pkcs8) };
}
