/**
 * SCRAM as src/auth/mod.ts wires it: the scram-file key, SCRAM-only set-ups, reload, and the
 * per-address back-off and queue that password failures already feed.
 */
import assert from "node:assert/strict";
import { createSecurity } from "../../src/auth/mod.ts";
import { makeVerifier } from "../../src/auth/scram.ts";
import { formatVerifier } from "../../src/auth/scram_file.ts";
import type { AuthStep, EnhancedAuthenticator } from "../../src/broker/ports/auth.ts";
import { defaultConfig } from "../../src/config/load.ts";
import { METHOD, ScramClient } from "../helpers/scram_client.ts";
import { memoryLogger, request, tempDir } from "./fixtures.ts";

async function withScramFile<T>(fn: (path: string) => Promise<T>): Promise<T> {
  const dir = await tempDir();
  try {
    const v = await makeVerifier("pencil", 4096);
    await Deno.writeTextFile(`${dir}/scram`, `user:${formatVerifier(v)}\n`);
    return await fn(`${dir}/scram`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs a whole SCRAM exchange from `address`; the final step's result and how long it took. */
async function attempt(
  ea: EnhancedAuthenticator,
  user: string,
  password: string,
  address = "192.0.2.1:1000",
): Promise<{ step: AuthStep; ms: number }> {
  const s = new ScramClient(user, password);
  const x = ea.start({
    ...request({ remoteAddress: address }),
    method: METHOD,
    reauthenticate: false,
  });
  const first = await x.step(s.first());
  assert.equal(first.status, "continue");
  const t0 = performance.now();
  const step = await x.step(s.final((first as { data: Uint8Array }).data!));
  return { step, ms: performance.now() - t0 };
}

Deno.test("auth.scram-file offers SCRAM-SHA-256; without it there is no enhanced authenticator", async () => {
  const none = await createSecurity(defaultConfig(), memoryLogger());
  assert.equal(none.enhancedAuthenticator, undefined);
  await withScramFile(async (path) => {
    const log = memoryLogger();
    const s = await createSecurity({ ...defaultConfig(), authScramFile: path }, log);
    assert.deepEqual(s.enhancedAuthenticator?.methods, ["SCRAM-SHA-256"]);
    assert.equal(
      (await attempt(s.enhancedAuthenticator!, "user", "pencil")).step.status,
      "success",
    );
    assert.match(log.lines.join("\n"), /SCRAM-SHA-256 for 1 user\(s\).*let in unchecked/);
  });
});

Deno.test("SCRAM alone satisfies mqtt-password-must: password clients are refused, SCRAM users get in", async () => {
  await withScramFile(async (path) => {
    const s = await createSecurity(
      { ...defaultConfig(), passwordMust: true, authScramFile: path },
      memoryLogger(),
    );
    const r = await s.authenticator.authenticate(request({ username: "user", pw: "pencil" }));
    assert.equal(r.ok, false, "the SCRAM verifier does not check a plain password");
    assert.equal(
      (await attempt(s.enhancedAuthenticator!, "user", "pencil")).step.status,
      "success",
    );
  });
});

Deno.test("a missing or broken SCRAM file stops start-up naming it; reload installs new users", async () => {
  await assert.rejects(
    () =>
      createSecurity({ ...defaultConfig(), authScramFile: "/nonexistent/scram" }, memoryLogger()),
    /SCRAM file \/nonexistent\/scram/,
  );
  await withScramFile(async (path) => {
    const s = await createSecurity({ ...defaultConfig(), authScramFile: path }, memoryLogger());
    assert.equal((await attempt(s.enhancedAuthenticator!, "bob", "pw")).step.status, "failure");
    const bob = await makeVerifier("pw", 4096);
    await Deno.writeTextFile(path, `bob:${formatVerifier(bob)}\n`, { append: true });
    await s.reload();
    assert.equal((await attempt(s.enhancedAuthenticator!, "bob", "pw")).step.status, "success");
    await Deno.writeTextFile(path, "garbage\n");
    await assert.rejects(async () => await s.reload(), /line 1/);
    assert.equal(
      (await attempt(s.enhancedAuthenticator!, "bob", "pw")).step.status,
      "success",
      "a broken file keeps the previous users",
    );
  });
});

Deno.test("SCRAM failures slow their address down like password failures, others are not affected", async () => {
  await withScramFile(async (path) => {
    const s = await createSecurity({
      ...defaultConfig(),
      authScramFile: path,
      authFailureDelayMax: 2,
    }, memoryLogger());
    const ea = s.enhancedAuthenticator!;
    for (let i = 0; i < 3; i++) {
      assert.equal((await attempt(ea, "user", "wrong")).step.status, "failure");
    }
    // Three failures: at least 100 ms * 2^(score - 1) before the next answer from that address.
    const slowed = await attempt(ea, "user", "pencil");
    assert.equal(slowed.step.status, "success");
    assert.ok(slowed.ms >= 150, `expected a back-off delay, the answer took ${slowed.ms} ms`);
    const other = await attempt(ea, "user", "pencil", "198.51.100.9:1");
    assert.ok(other.ms < 150, `another address waits for nothing (${other.ms} ms)`);
  });
});

Deno.test("a full per-address queue refuses a SCRAM step with 0x88 (server unavailable)", async () => {
  await withScramFile(async (path) => {
    const s = await createSecurity({
      ...defaultConfig(),
      authScramFile: path,
      authMaxPendingPerIp: 1,
      authFailureDelayMax: 1,
    }, memoryLogger());
    const ea = s.enhancedAuthenticator!;
    assert.equal((await attempt(ea, "user", "wrong")).step.status, "failure");
    // The next step from that address now waits out its back-off; one more finds the queue full.
    const start = (u: string) =>
      ea.start({
        ...request({ remoteAddress: "192.0.2.1:2" }),
        method: METHOD,
        reauthenticate: false,
      })
        .step(new ScramClient(u, "x").first());
    const waiting = start("user");
    const refused = await start("user");
    assert.deepEqual(
      { status: refused.status, code: (refused as { reasonCode: number }).reasonCode },
      { status: "failure", code: 0x88 },
    );
    assert.equal((await waiting).status, "continue");
  });
});
