import assert from "node:assert/strict";
import { createSecurity } from "../../src/auth/mod.ts";
import { formatHash, hashPassword } from "../../src/auth/password_file.ts";
import type { ClientInfo } from "../../src/broker/model.ts";
import { defaultConfig } from "../../src/config/load.ts";
import {
  DEMO_PASSWORD,
  DEMO_PUBLIC_PEM,
  DEMO_USER,
  memoryLogger,
  request,
  tempDir,
} from "./fixtures.ts";

async function withFiles<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await tempDir();
  try {
    await Deno.writeTextFile(`${dir}/demo.pem`, DEMO_PUBLIC_PEM);
    const e = await hashPassword("wonderland", 1000);
    await Deno.writeTextFile(`${dir}/pw`, `alice:${formatHash(e)}\n`);
    await Deno.writeTextFile(`${dir}/acl`, "user alice\ntopic readwrite alice/#\n");
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const info = (username?: string): ClientInfo => ({
  clientId: "c",
  username,
  remoteAddress: "127.0.0.1:1",
  transport: "tcp",
  protocolVersion: 4,
});

Deno.test("by default everyone is let in and everything is allowed", async () => {
  const log = memoryLogger();
  const s = await createSecurity(defaultConfig(), log);
  assert.deepEqual(await s.authenticator.authenticate(request()), { ok: true });
  assert.equal(s.authorizer.canPublish(info(), "any/topic"), true);
  assert.equal(s.authorizer.canSubscribe(info(), "#"), true);
  // The rate limit is on by default, but loopback (local proxies, tests, the bench) is exempt.
  for (let i = 0; i < 100; i++) assert.equal(s.admit!(`127.0.0.1:${1000 + i}`), null);
  const outside = Array.from({ length: 40 }, (_, i) => s.admit!(`192.0.2.7:${1000 + i}`));
  assert.equal(outside.filter((r) => r === null).length, 30, "a burst of 30 from elsewhere");
  assert.match(log.lines.join("\n"), /authentication off/);
});

Deno.test("mqtt-password-must without any provider stops start-up with a hint", async () => {
  await assert.rejects(
    async () => await createSecurity({ ...defaultConfig(), passwordMust: true }, memoryLogger()),
    /no authentication provider is configured.*demo-auth-public\.pem/,
  );
});

Deno.test("providers naming something unknown, unset or twice stop start-up", () =>
  withFiles(async (dir) => {
    const base = { ...defaultConfig(), passwordMust: true, authRsaPublicKey: `${dir}/demo.pem` };
    await assert.rejects(
      async () => await createSecurity({ ...base, authProviders: ["ldap"] }, memoryLogger()),
      /unknown provider "ldap"/,
    );
    await assert.rejects(
      async () => await createSecurity({ ...base, authProviders: ["http"] }, memoryLogger()),
      /lists "http" but mqttwk\.broker\.auth\.http-url is not set/,
    );
    await assert.rejects(
      async () => await createSecurity({ ...base, authProviders: ["rsa", "RSA"] }, memoryLogger()),
      /listed twice/,
    );
    await assert.rejects(
      async () =>
        await createSecurity({ ...base, authRsaPublicKey: `${dir}/nope.pem` }, memoryLogger()),
      /nope\.pem/,
    );
  }));

Deno.test("with rsa and a password file both kinds of users get in, others get 0x04", () =>
  withFiles(async (dir) => {
    const s = await createSecurity({
      ...defaultConfig(),
      passwordMust: true,
      authRsaPublicKey: `${dir}/demo.pem`,
      authPasswordFile: `${dir}/pw`,
      authFailureDelayMax: 0,
    }, memoryLogger());
    const auth = (username?: string, pw?: string) =>
      s.authenticator.authenticate(request({ username, pw }));
    assert.deepEqual(await auth(DEMO_USER, DEMO_PASSWORD), { ok: true, verified: true });
    assert.deepEqual(await auth("alice", "wonderland"), { ok: true, verified: true });
    assert.equal((await auth("alice", DEMO_PASSWORD) as { reasonCode: number }).reasonCode, 4);
    assert.equal((await auth("mallory", "x") as { reasonCode: number }).reasonCode, 4);
    assert.equal((await auth("alice") as { reasonCode: number }).reasonCode, 4);
    assert.equal((await auth() as { reasonCode: number }).reasonCode, 5, "no username: 0x05");
  }));

Deno.test("repeated failures from one address slow its next answers, not others'", () =>
  withFiles(async (dir) => {
    const s = await createSecurity({
      ...defaultConfig(),
      passwordMust: true,
      authPasswordFile: `${dir}/pw`,
      authFailureDelayMax: 0.6,
    }, memoryLogger());
    const attempt = async (ip: string, pw: string) => {
      const t = Date.now();
      const r = await s.authenticator.authenticate(
        request({ username: "alice", pw, remoteAddress: `${ip}:4000` }),
      );
      return { ok: r.ok, ms: Date.now() - t };
    };
    await attempt("10.0.0.1", "bad");
    assert.ok((await attempt("10.0.0.1", "bad")).ms >= 90, "second attempt waits ~100 ms");
    assert.ok((await attempt("10.0.0.1", "bad")).ms >= 190, "third waits ~200 ms");
    await attempt("10.0.0.1", "bad");
    const capped = await attempt("10.0.0.1", "wonderland");
    assert.equal(capped.ok, true, "the right password still gets in, just later");
    assert.ok(capped.ms >= 590 && capped.ms < 2_000, `waited ${capped.ms} ms, capped at 600`);
    const other = await attempt("10.0.0.2", "wonderland");
    assert.ok(other.ms < 300, `another address is not slowed (${other.ms} ms)`);
  }));

Deno.test("parallel attempts from one address wait for each other's back-off; loopback does not", () =>
  withFiles(async (dir) => {
    const s = await createSecurity({
      ...defaultConfig(),
      passwordMust: true,
      authPasswordFile: `${dir}/pw`,
      authFailureDelayMax: 0.05,
      authMaxPendingPerIp: 5,
    }, memoryLogger());
    const burst = async (ip: string, n: number) => {
      const t = Date.now();
      const codes = await Promise.all(Array.from({ length: n }, async (_, i) => {
        const r = await s.authenticator.authenticate(
          request({ username: "alice", pw: "bad", remoteAddress: `${ip}:${4000 + i}` }),
        );
        return r.ok ? 0 : r.reasonCode;
      }));
      return { codes, ms: Date.now() - t };
    };
    const outside = await burst("10.0.0.9", 7);
    const local = await burst("127.0.0.1", 7);
    console.log(
      `7 parallel failures with a 50 ms back-off: 10.0.0.9 answered in ${outside.ms} ms ` +
        `(${outside.codes.join(",")}), 127.0.0.1 in ${local.ms} ms (${local.codes.join(",")})`,
    );
    assert.deepEqual(outside.codes, [4, 4, 4, 4, 4, 3, 3], "five queued, two refused");
    assert.ok(outside.ms >= 4 * 50, "the queued four after the first waited 50 ms each");
    assert.deepEqual(local.codes, [4, 4, 4, 4, 4, 4, 4], "loopback is neither bounded...");
    assert.ok(local.ms < 4 * 50, "...nor serialised");
  }));

Deno.test("the connection rate limit refuses an address over its budget", async () => {
  const s = await createSecurity({
    ...defaultConfig(),
    authMaxConnectionRate: 1,
    authConnectionBurst: 2,
  }, memoryLogger());
  assert.equal(s.admit!("192.0.2.7:1000"), null);
  assert.equal(s.admit!("192.0.2.7:1001"), null);
  assert.match(s.admit!("192.0.2.7:1002")!, /rate limit for 192\.0\.2\.7 exceeded/);
  assert.equal(s.admit!("[::1]:1000"), null);
});

Deno.test("reload picks up new passwords and ACL rules, and keeps the old ones on errors", () =>
  withFiles(async (dir) => {
    const log = memoryLogger();
    const s = await createSecurity({
      ...defaultConfig(),
      passwordMust: true,
      authPasswordFile: `${dir}/pw`,
      authAclFile: `${dir}/acl`,
      authFailureDelayMax: 0,
    }, log);
    const alice = info("alice");
    assert.equal(s.authorizer.canPublish(alice, "alice/1"), true);
    assert.equal(s.authorizer.canPublish(alice, "other/1"), false);

    const e = await hashPassword("new-pw", 1000);
    await Deno.writeTextFile(`${dir}/pw`, `alice:${formatHash(e)}\n`);
    await Deno.writeTextFile(`${dir}/acl`, "user alice\ntopic other/#\n");
    await s.reload();
    assert.equal(
      (await s.authenticator.authenticate(request({ username: "alice", pw: "new-pw" })))
        .ok,
      true,
    );
    assert.equal(
      (await s.authenticator.authenticate(request({ username: "alice", pw: "wonderland" }))).ok,
      false,
    );
    assert.equal(s.authorizer.canPublish(alice, "alice/1"), false);
    assert.equal(s.authorizer.canPublish(alice, "other/1"), true);

    // A broken ACL: nothing changes, not even the (valid) password file.
    const e2 = await hashPassword("third", 1000);
    await Deno.writeTextFile(`${dir}/pw`, `alice:${formatHash(e2)}\n`);
    await Deno.writeTextFile(`${dir}/acl`, "user alice\nbogus line\n");
    await assert.rejects(async () => await s.reload(), /acl line 2/);
    assert.equal(s.authorizer.canPublish(alice, "other/1"), true);
    assert.equal(
      (await s.authenticator.authenticate(request({ username: "alice", pw: "new-pw" })))
        .ok,
      true,
    );
  }));

Deno.test("an ACL without mqtt-password-must warns that usernames are unverified", () =>
  withFiles(async (dir) => {
    const log = memoryLogger();
    const s = await createSecurity({ ...defaultConfig(), authAclFile: `${dir}/acl` }, log);
    assert.match(log.lines.join("\n"), /WARN an ACL file is set but mqtt-password-must is false/);
    assert.equal(s.authorizer.canPublish(info("alice"), "alice/x"), true);
    assert.equal(s.authorizer.canPublish(info(), "alice/x"), false);
  }));
