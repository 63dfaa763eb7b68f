import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { constants, createPublicKey, privateEncrypt } from "node:crypto";
import {
  generateRsaKeyPair,
  parsePrivateKeyPem,
  parsePublicKeyPem,
  rsaPassword,
  verifyRsaPassword,
} from "../../src/auth/rsa.ts";
import { run } from "../../scripts/auth.ts";
import { DEMO_PASSWORD, DEMO_PUBLIC_PEM, DEMO_USER, tempDir } from "./fixtures.ts";

const demoKey = parsePublicKeyPem(DEMO_PUBLIC_PEM);
const pair = await generateRsaKeyPair(2048);
const priv = parsePrivateKeyPem(pair.privatePem);
const pub = parsePublicKeyPem(pair.publicPem);

Deno.test("the original demo credentials verify with the demo public key", () => {
  assert.equal(demoKey.k, 64);
  assert.equal(demoKey.e, 65537n);
  assert.equal(verifyRsaPassword(demoKey, DEMO_USER, DEMO_PASSWORD), true);
  assert.equal(verifyRsaPassword(demoKey, DEMO_USER, DEMO_PASSWORD.toLowerCase()), true);
});

Deno.test("the shipped keystore/demo-auth-public.pem is the original demo key", async () => {
  const text = await Deno.readTextFile(
    new URL("../../keystore/demo-auth-public.pem", import.meta.url),
  );
  assert.deepEqual(parsePublicKeyPem(text), demoKey);
});

Deno.test("the demo password is refused for another user or when altered", () => {
  assert.equal(verifyRsaPassword(demoKey, "demo2", DEMO_PASSWORD), false);
  assert.equal(verifyRsaPassword(demoKey, "Demo", DEMO_PASSWORD), false);
  const flipped = (DEMO_PASSWORD[0] === "8" ? "9" : "8") + DEMO_PASSWORD.slice(1);
  assert.equal(verifyRsaPassword(demoKey, DEMO_USER, flipped), false);
  assert.equal(verifyRsaPassword(demoKey, DEMO_USER, DEMO_PASSWORD.slice(2)), false);
  assert.equal(verifyRsaPassword(demoKey, DEMO_USER, DEMO_PASSWORD + DEMO_PASSWORD), false);
  assert.equal(verifyRsaPassword(demoKey, DEMO_USER, ""), false);
  assert.equal(verifyRsaPassword(demoKey, DEMO_USER, "Z".repeat(128)), false);
  // A block at or above the modulus is not a valid ciphertext.
  assert.equal(verifyRsaPassword(demoKey, DEMO_USER, "F".repeat(128)), false);
});

Deno.test("a generated 2048-bit key signs passwords that verify, as uppercase hex", () => {
  assert.equal(priv.k, 256);
  const pw = rsaPassword(priv, "alice");
  assert.match(pw, /^[0-9A-F]{512}$/);
  assert.equal(verifyRsaPassword(pub, "alice", pw), true);
  assert.equal(verifyRsaPassword(pub, "bob", pw), false);
  assert.equal(verifyRsaPassword(demoKey, "alice", pw), false);
});

Deno.test("passwords equal OpenSSL's private encryption with PKCS#1 type-1 padding", () => {
  for (const user of ["alice", "ünïcødé-user", "x"]) {
    const ref = privateEncrypt(
      { key: pair.privatePem, padding: constants.RSA_PKCS1_PADDING },
      Buffer.from(user, "utf8"),
    ).toString("hex").toUpperCase();
    assert.equal(rsaPassword(priv, user), ref);
  }
});

Deno.test("usernames longer than modulus-11 bytes are split into blocks", () => {
  const user = "u".repeat(245) + "v".repeat(10); // 245 = 256 - 11, so two blocks
  const pw = rsaPassword(priv, user);
  assert.equal(pw.length, 2 * 512);
  const first = privateEncrypt(
    { key: pair.privatePem, padding: constants.RSA_PKCS1_PADDING },
    Buffer.from(user.slice(0, 245)),
  ).toString("hex").toUpperCase();
  assert.equal(pw.slice(0, 512), first);
  assert.equal(verifyRsaPassword(pub, user, pw), true);
  assert.equal(verifyRsaPassword(pub, user.slice(0, 245), pw.slice(0, 512)), true);
  assert.equal(verifyRsaPassword(pub, user, pw.slice(0, 512)), false);
});

Deno.test("PKCS#1 PEM keys are read as well as SPKI and PKCS#8", () => {
  const pkcs1 = createPublicKey(pair.publicPem).export({ type: "pkcs1", format: "pem" });
  assert.ok(String(pkcs1).includes("BEGIN RSA PUBLIC KEY"));
  assert.deepEqual(parsePublicKeyPem(String(pkcs1)), pub);
  assert.throws(() => parsePublicKeyPem("nothing here"), /no PUBLIC KEY/);
  assert.throws(() => parsePrivateKeyPem(pair.publicPem), /no PRIVATE KEY/);
});

Deno.test("the auth CLI generates a key pair and prints a password that verifies", async () => {
  const dir = await tempDir();
  try {
    const log = console.log;
    const out: string[] = [];
    console.log = (...a: unknown[]) => out.push(a.join(" "));
    try {
      assert.equal(await run(["keygen", "--out", dir]), 0);
      assert.equal(await run(["keygen", "--out", dir]), 1, "refuses to overwrite");
      out.length = 0;
      assert.equal(await run(["password", "--key", `${dir}/auth-private.pem`, "carol"]), 0);
      const pw = out[0];
      assert.match(pw, /^[0-9A-F]{512}$/);
      assert.equal(
        await run(["verify", "--key", `${dir}/auth-public.pem`, "carol", pw]),
        0,
      );
      assert.equal(
        await run(["verify", "--key", `${dir}/auth-public.pem`, "dave", pw]),
        1,
      );
    } finally {
      console.log = log;
    }
    assert.equal((await Deno.stat(`${dir}/auth-private.pem`)).mode! & 0o777, 0o600);
    const key = parsePublicKeyPem(await Deno.readTextFile(`${dir}/auth-public.pem`));
    assert.equal(key.k, 256);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
