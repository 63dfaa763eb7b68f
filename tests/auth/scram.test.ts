/**
 * SCRAM-SHA-256 server side (src/auth/scram.ts), the verifier file (scram_file.ts) and the
 * `deno task scram-user` CLI, checked against the RFC 7677 §3 test vector and a client written
 * with node:crypto (tests/helpers/scram_client.ts).
 */
import assert from "node:assert/strict";
import type { AuthStep } from "../../src/broker/ports/auth.ts";
import {
  b64decode,
  makeVerifier,
  saslprep,
  ScramServerExchange,
  type ScramUsers,
  type ScramVerifier,
} from "../../src/auth/scram.ts";
import {
  formatVerifier,
  parseScramFile,
  parseVerifier,
  ScramFileUsers,
  updateScramFileText,
} from "../../src/auth/scram_file.ts";
import { run as scramUser } from "../../scripts/scram_user.ts";
import { ScramClient } from "../helpers/scram_client.ts";
import { tempDir } from "./fixtures.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

// RFC 7677 §3: user "user", password "pencil".
const RFC = {
  salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
  clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
  serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
  serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," +
    "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," +
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

function usersOf(map: Record<string, ScramVerifier>): ScramUsers {
  return {
    lookup: (u) => map[u],
    fake: (u) => Promise.resolve({ salt: enc.encode(`fake-${u}`), iterations: 4096 }),
  };
}

async function rfcUsers(): Promise<ScramUsers> {
  return usersOf({ user: await makeVerifier("pencil", 4096, b64decode(RFC.salt)) });
}

const text = (s: AuthStep) => dec.decode((s as { data: Uint8Array }).data);

Deno.test("the RFC 7677 test vector: user/pencil, same server-first and server-final, success", async () => {
  const x = new ScramServerExchange(await rfcUsers(), () => RFC.serverNonce);
  const first = await x.step(enc.encode(RFC.clientFirst));
  assert.equal(first.status, "continue");
  assert.equal(text(first), RFC.serverFirst);
  const final = await x.step(enc.encode(RFC.clientFinal));
  assert.deepEqual(final.status, "success");
  assert.equal((final as { username: string }).username, "user");
  assert.equal(text(final), RFC.serverFinal);
});

Deno.test("a node:crypto client gets in and verifies the server's signature", async () => {
  const client = new ScramClient("user", "pencil");
  const x = new ScramServerExchange(await rfcUsers());
  const first = await x.step(client.first());
  assert.equal(first.status, "continue");
  const final = await x.step(client.final((first as { data: Uint8Array }).data));
  assert.equal(final.status, "success");
  assert.ok(client.verifyServer((final as { data: Uint8Array }).data));
});

Deno.test("a wrong password fails with 0x87 and no server signature", async () => {
  const client = new ScramClient("user", "pencil!");
  const x = new ScramServerExchange(await rfcUsers());
  const first = await x.step(client.first());
  const final = await x.step(client.final((first as { data: Uint8Array }).data));
  assert.deepEqual(final, {
    status: "failure",
    reasonCode: 0x87,
    reason: "SCRAM authentication failed",
  });
});

Deno.test("an unknown user gets a challenge like a real one, stable per name, and the same failure (RFC 5802 §5.1)", async () => {
  const dir = await tempDir();
  try {
    const v = await makeVerifier("pencil", 5000);
    await Deno.writeTextFile(`${dir}/scram`, `user:${formatVerifier(v)}\n`);
    const users = new ScramFileUsers(`${dir}/scram`);
    (await users.load())();
    const challenge = async (name: string) => {
      const client = new ScramClient(name, "guess");
      const x = new ScramServerExchange(users);
      const first = await x.step(client.first());
      assert.equal(first.status, "continue");
      const attrs = text(first).split(",");
      const final = await x.step(client.final((first as { data: Uint8Array }).data));
      return { salt: attrs[1], iterations: attrs[2], final };
    };
    const a1 = await challenge("nobody");
    const a2 = await challenge("nobody");
    const b = await challenge("someone-else");
    const real = await challenge("user");
    assert.equal(a1.salt, a2.salt, "the same fake salt on every attempt");
    assert.notEqual(a1.salt, b.salt, "another fake salt for another name");
    assert.equal(b64decode(a1.salt.slice(2)).length, b64decode(real.salt.slice(2)).length);
    assert.equal(a1.iterations, "i=5000", "the users' iteration count");
    assert.deepEqual(a1.final, real.final, "same failure as a wrong password");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("malformed or unsupported client messages fail the exchange", async () => {
  const users = await rfcUsers();
  const firstFails = async (msg: string, why: RegExp) => {
    const step = await new ScramServerExchange(users).step(enc.encode(msg));
    assert.equal(step.status, "failure", msg);
    assert.match((step as { reason: string }).reason, why, msg);
  };
  await firstFails("n=user,r=abc", /malformed/);
  await firstFails("p=tls-unique,,n=user,r=abc", /channel binding is not supported/);
  await firstFails("n,,m=ext,n=user,r=abc", /mandatory extension/);
  await firstFails("n,,n=user,r=a,b", /malformed/);
  await firstFails("n,,n=,r=abc", /malformed/);
  await firstFails("n,,n=us=er,r=abc", /malformed/);
  await firstFails("n,a=other,n=user,r=abc", /authorization identity/);
  const bad = await new ScramServerExchange(users).step(new Uint8Array([0x6e, 0x2c, 0xff]));
  assert.equal(bad.status, "failure");

  const finalFails = async (mutate: (final: string) => string, why: RegExp) => {
    const client = new ScramClient("user", "pencil");
    const x = new ScramServerExchange(users);
    const first = await x.step(client.first());
    const final = dec.decode(client.final((first as { data: Uint8Array }).data));
    const step = await x.step(enc.encode(mutate(final)));
    assert.equal(step.status, "failure");
    assert.match((step as { reason: string }).reason, why);
  };
  await finalFails((f) => f.replace("c=biws", "c=eSws"), /channel binding data/);
  await finalFails((f) => f.replace(/r=[^,]*/, "r=other"), /nonce does not match/);
  await finalFails((f) => f.replace(/,p=.*/, ""), /malformed/);
  await finalFails((f) => f.replace(/,p=.*/, ",p=!!"), /malformed SCRAM client proof/);
  await finalFails((f) => f.replace(/,p=.*/, ",p=AAAA"), /authentication failed/);
});

Deno.test("an authorization identity equal to the user and the 'y' flag are accepted; =2C/=3D names decode", async () => {
  const v = await makeVerifier("pw", 4096);
  const users = usersOf({ "a,b=c": v, user: v });
  const x = new ScramServerExchange(users);
  const step = await x.step(enc.encode("y,a=user,n=user,r=abc"));
  assert.equal(step.status, "continue");
  const client = new ScramClient("a,b=c", "pw");
  const y = new ScramServerExchange(users);
  const first = await y.step(client.first());
  const final = await y.step(client.final((first as { data: Uint8Array }).data));
  assert.equal((final as { username: string }).username, "a,b=c");
});

Deno.test("a finished exchange takes no more steps", async () => {
  const x = new ScramServerExchange(await rfcUsers(), () => RFC.serverNonce);
  await x.step(enc.encode(RFC.clientFirst));
  await x.step(enc.encode(RFC.clientFinal));
  assert.equal((await x.step(enc.encode(RFC.clientFinal))).status, "failure");
});

Deno.test("SASLprep maps spaces and soft hyphens, normalises, refuses control characters", () => {
  assert.equal(saslprep("I\u00ADX"), "IX");
  assert.equal(saslprep("a\u00A0b"), "a b");
  assert.equal(saslprep("\u2168"), "IX");
  assert.throws(() => saslprep("a\u0007"), /prohibits/);
});

Deno.test("SASLprep bidirectional rule (RFC 4013 section 6, RFC 3454 section 6): right-to-left text alone, or with neutral characters inside it, is kept; mixed with left-to-right text, or not at both ends, it is refused", () => {
  // Hebrew alef-bet-gimel, Arabic alef-lam, digits and spaces inside (neutral / weak).
  assert.equal(saslprep("\u05D0\u05D1\u05D2"), "\u05D0\u05D1\u05D2");
  assert.equal(saslprep("\u0627 12 \u0644"), "\u0627 12 \u0644");
  // ASCII alone and neutral characters alone stay untouched by the rule.
  assert.equal(saslprep("pencil 123!"), "pencil 123!");
  // RandALCat with an LCat character: refused (RFC 3454 6.2).
  assert.throws(() => saslprep("\u05D0a\u05D1"), /right-to-left/);
  assert.throws(() => saslprep("\u0627\u00E9\u0644"), /right-to-left/);
  // RandALCat not first or not last: refused (RFC 3454 6.3), e.g. a digit at either end.
  assert.throws(() => saslprep("1\u05D0"), /right-to-left/);
  assert.throws(() => saslprep("\u0627 1"), /right-to-left/);
  // RFC 3454 6.1: U+200F (RIGHT-TO-LEFT MARK) is prohibited outright.
  assert.throws(() => saslprep("\u05D0\u200F\u05D1"), /prohibits/);
});

Deno.test("verifier lines round-trip; fewer than 4096 iterations and bad lines are refused with their line", async () => {
  const v = await makeVerifier("pencil", 4096, b64decode(RFC.salt));
  const line = formatVerifier(v);
  assert.match(line, /^SCRAM-SHA-256\$4096:W22ZaJ0SNY7soEsUEjb6gQ==\$[^:]+:[^:]+$/);
  assert.deepEqual(parseVerifier(line), v);
  assert.throws(
    () => parseScramFile(`# c\n\nuser:${line.replace("$4096:", "$4095:")}\n`, "f"),
    /f line 3: iteration count 4095 below 4096/,
  );
  assert.throws(() => parseScramFile("user\n", "f"), /f line 1: expected user:verifier/);
  assert.throws(() => parseScramFile("u:SCRAM-SHA-256$4096:AA==$AA==:AA==", "f"), /32 bytes/);
  const added = updateScramFileText("# users\nbob:x\n", "alice", v);
  assert.equal(added.text, `# users\nbob:x\nalice:${line}\n`);
  const removed = updateScramFileText(added.text, "alice", null);
  assert.deepEqual(removed, { text: "# users\nbob:x\n", found: true });
});

Deno.test("deno task scram-user writes a salted verifier (never the password) that a client can use", async () => {
  const dir = await tempDir();
  const file = `${dir}/scram`;
  const quiet = console.error;
  console.error = () => {};
  try {
    assert.equal(await scramUser([file, "alice"], () => Promise.resolve("s3cret pw")), 0);
    assert.equal(await scramUser(["--iterations", "8000", file, "bob", "hunter2"]), 0);
    const textOut = await Deno.readTextFile(file);
    assert.ok(!textOut.includes("s3cret") && !textOut.includes("hunter2"));
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
    const users = parseScramFile(textOut);
    assert.equal(users.get("alice")?.iterations, 4096);
    assert.equal(users.get("bob")?.iterations, 8000);
    const client = new ScramClient("alice", "s3cret pw");
    const x = new ScramServerExchange(usersOf(Object.fromEntries(users)));
    const first = await x.step(client.first());
    const final = await x.step(client.final((first as { data: Uint8Array }).data));
    assert.equal(final.status, "success");
    await assert.rejects(() => scramUser(["--iterations", "1000", file, "c", "x"]), /4096/);
    await assert.rejects(() => scramUser([file, "a:b", "x"]), /without ':'/);
    assert.equal(await scramUser(["--delete", file, "alice"]), 0);
    assert.equal(parseScramFile(await Deno.readTextFile(file)).has("alice"), false);
    assert.equal(await scramUser(["-D", file, "alice"]), 1);
  } finally {
    console.error = quiet;
    await Deno.remove(dir, { recursive: true });
  }
});
