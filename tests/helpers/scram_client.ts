/**
 * The client side of SCRAM-SHA-256 (RFC 5802 / RFC 7677) for tests, written with node:crypto so
 * it shares no code with the broker's WebCrypto implementation (src/auth/scram.ts).
 */
import { Buffer } from "node:buffer";
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

export const METHOD = "SCRAM-SHA-256";

export class ScramClient {
  readonly clientFirstBare: string;
  #serverSignature: Buffer | undefined;

  constructor(
    readonly user: string,
    readonly password: string,
    readonly nonce: string = randomBytes(18).toString("base64"),
  ) {
    const name = user.replace(/=/g, "=3D").replace(/,/g, "=2C");
    this.clientFirstBare = `n=${name},r=${nonce}`;
  }

  /** The Authentication Data of the CONNECT (or AUTH 0x19). */
  first(): Buffer {
    return Buffer.from(`n,,${this.clientFirstBare}`);
  }

  /** The answer to the server-first-message (AUTH 0x18 data). */
  final(serverFirst: Uint8Array): Buffer {
    const text = Buffer.from(serverFirst).toString();
    const attrs = Object.fromEntries(
      text.split(",").map((kv) => [kv.slice(0, 1), kv.slice(2)]),
    );
    if (!attrs.r.startsWith(this.nonce)) throw new Error("server nonce does not extend ours");
    const salted = pbkdf2Sync(
      this.password,
      Buffer.from(attrs.s, "base64"),
      Number(attrs.i),
      32,
      "sha256",
    );
    const clientKey = createHmac("sha256", salted).update("Client Key").digest();
    const storedKey = createHash("sha256").update(clientKey).digest();
    const withoutProof = `c=biws,r=${attrs.r}`;
    const authMessage = `${this.clientFirstBare},${text},${withoutProof}`;
    const signature = createHmac("sha256", storedKey).update(authMessage).digest();
    const proof = Buffer.alloc(32);
    for (let i = 0; i < 32; i++) proof[i] = clientKey[i] ^ signature[i];
    const serverKey = createHmac("sha256", salted).update("Server Key").digest();
    this.#serverSignature = createHmac("sha256", serverKey).update(authMessage).digest();
    return Buffer.from(`${withoutProof},p=${proof.toString("base64")}`);
  }

  /** True when the server-final-message proves the server knows the verifier. */
  verifyServer(serverFinal: Uint8Array | undefined): boolean {
    if (serverFinal === undefined || this.#serverSignature === undefined) return false;
    const text = Buffer.from(serverFinal).toString();
    if (!text.startsWith("v=")) return false;
    const got = Buffer.from(text.slice(2), "base64");
    return got.length === 32 && timingSafeEqual(got, this.#serverSignature);
  }
}
