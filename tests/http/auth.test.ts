/**
 * Who may use the HTTP API: API keys made by `deno task api-key`, password-file users with a
 * role, the read/admin split, the failed-login limit, the audit line, and the refusal to start
 * on a non-loopback address without authentication.
 */
import assert from "node:assert/strict";
import { createApp, StartFailed } from "../../src/app/app.ts";
import { main as apiKey } from "../../scripts/api_key.ts";
import { passwordFile } from "../auth/e2e_helpers.ts";
import { appConfig, logBook } from "../helpers/app.ts";
import { scoped } from "../helpers/broker.ts";
import { call, createKey, quietly, startHttpApp } from "./helpers.ts";

Deno.test("an API key made with the api-key task opens the API; read keys cannot change anything", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-http-keys-" });
  await scoped(async (defer) => {
    defer(() => Deno.remove(dir, { recursive: true }));
    const file = `${dir}/api-keys`;
    const admin = await createKey(file, "ops", "admin");
    const reader = await createKey(file, "grafana", "read");
    assert.match(admin, /^mqk_[A-Za-z0-9_-]{43}$/);
    // Stored hashed: the key itself is nowhere in the file.
    const stored = await Deno.readTextFile(file);
    assert.ok(!stored.includes(admin) && !stored.includes(reader));
    assert.match(stored, /^ops:admin:[0-9a-f]{64}$/m);

    const { app, base, log } = await startHttpApp([`--mqttwk.http.api-keys-file=${file}`]);
    defer(() => app.stop());
    assert.ok(!log.text().includes("is open to every local process"));

    assert.deepEqual((await call(base, "/api/v1/whoami", { token: admin })).body, {
      user: "ops",
      role: "admin",
    });
    assert.deepEqual((await call(base, "/api/v1/whoami", { token: reader })).body, {
      user: "grafana",
      role: "read",
    });

    const none = await call(base, "/api/v1/status");
    assert.equal(none.status, 401);
    assert.equal(none.body.error, "authentication required");
    assert.equal(none.headers.get("www-authenticate"), 'Basic realm="mqttwk"');
    // The dashboard's fetch says X-Requested-With: no browser login dialog for it.
    const quiet = await call(base, "/api/v1/status", { headers: { "x-requested-with": "fetch" } });
    assert.equal(quiet.status, 401);
    assert.equal(quiet.headers.get("www-authenticate"), null);

    assert.equal((await call(base, "/api/v1/status", { token: reader })).status, 200);
    const denied = await call(base, "/api/v1/publish", {
      method: "POST",
      token: reader,
      body: JSON.stringify({ topic: "a/b", payload: "x" }),
    });
    assert.equal(denied.status, 403);
    assert.match(denied.body.error, /admin role/);
    await log.waitFor(
      /audit: user "grafana" \(key\) .*"\/api\/v1\/publish" refused: needs the admin role -> 403/,
    );
    const legacy = await call(base, "/open/api/mqttwk/send", {
      method: "POST",
      token: reader,
      body: JSON.stringify({ topic: "a/b", message: "x" }),
    });
    assert.equal(legacy.status, 403);
    assert.equal(legacy.body.code, -1);

    const ok = await call(base, "/api/v1/publish", {
      method: "POST",
      token: admin,
      body: JSON.stringify({ topic: "a/b", payload: "x" }),
    });
    assert.equal(ok.status, 200);
    const audit = await log.waitFor(/audit: user "ops" \(key\) from 127\.0\.0\.1:\d+: POST/);
    assert.match(audit, /"\/api\/v1\/publish" topic "a\/b" qos 0 1 bytes -> 200/);

    // Revoked: refused within a second or so (the file is checked at most once a second).
    assert.equal(await quietly(() => apiKey(["revoke", "ops", "--file", file])), 0);
    const deadline = Date.now() + 5000;
    let status = 200;
    while (status === 200 && Date.now() < deadline) {
      status = (await call(base, "/api/v1/whoami", { token: admin })).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(status, 401);
  });
});

Deno.test("password-file users log in with Basic and get the role the configuration gives", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-http-basic-" });
  await scoped(async (defer) => {
    defer(() => Deno.remove(dir, { recursive: true }));
    const pw = `${dir}/passwd`;
    await Deno.writeTextFile(pw, await passwordFile(["alice", "bob", "carol"]));
    const { app, base } = await startHttpApp([
      `--mqttwk.broker.auth.password-file=${pw}`,
      "--mqttwk.http.admin-users=alice",
      "--mqttwk.http.read-users=bob",
      `--mqttwk.http.api-keys-file=${dir}/none`,
    ]);
    defer(() => app.stop());
    assert.deepEqual(
      (await call(base, "/api/v1/whoami", { basic: ["alice", "alice-pw"] })).body,
      { user: "alice", role: "admin" },
    );
    assert.deepEqual(
      (await call(base, "/api/v1/whoami", { basic: ["bob", "bob-pw"] })).body,
      { user: "bob", role: "read" },
    );
    const carol = await call(base, "/api/v1/whoami", { basic: ["carol", "carol-pw"] });
    assert.equal(carol.status, 403);
    assert.match(carol.body.error, /no HTTP API role/);
    const wrong = await call(base, "/api/v1/whoami", { basic: ["alice", "nope"] });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error, "wrong username or password");
  });
});

Deno.test("ten failed logins from one address get 429 with Retry-After, even with a right key after", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-http-limit-" });
  await scoped(async (defer) => {
    defer(() => Deno.remove(dir, { recursive: true }));
    const file = `${dir}/api-keys`;
    const key = await createKey(file, "ops", "admin");
    const { app, base, log } = await startHttpApp([`--mqttwk.http.api-keys-file=${file}`]);
    defer(() => app.stop());
    for (let i = 0; i < 10; i++) {
      assert.equal((await call(base, "/api/v1/whoami", { token: `wrong-${i}` })).status, 401);
    }
    const limited = await call(base, "/api/v1/whoami", { token: key });
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get("retry-after")) > 0);
    // Each refused login is logged with its address.
    assert.ok(log.lines.some((l) => l.includes("refused login from 127.0.0.1")));
  });
});

Deno.test("the broker refuses to start with the HTTP port on a non-loopback address and no authentication", async () => {
  const log = logBook();
  const app = createApp(
    appConfig([
      "--mqttwk.broker.http-enabled=true",
      "--server.port=0",
      "--mqttwk.broker.http-host=0.0.0.0",
      "--mqttwk.http.api-keys-file=/nonexistent/api-keys",
    ]),
    { log },
  );
  await assert.rejects(() => app.start(), StartFailed);
  assert.match(log.text(), /mqttwk\.broker\.http-host is "0\.0\.0\.0", not loopback/);
  assert.deepEqual(app.listening(), []);
});

Deno.test("with an API key the HTTP port may listen on every interface, and still asks for the key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-http-any-" });
  await scoped(async (defer) => {
    defer(() => Deno.remove(dir, { recursive: true }));
    const file = `${dir}/api-keys`;
    const key = await createKey(file, "ops", "admin");
    const { app, base } = await startHttpApp([
      "--mqttwk.broker.http-host=0.0.0.0",
      `--mqttwk.http.api-keys-file=${file}`,
    ]);
    defer(() => app.stop());
    assert.equal((await call(base, "/api/v1/status")).status, 401);
    assert.equal((await call(base, "/api/v1/status", { token: key })).status, 200);
    // /metrics and /health stay as they were: no login.
    assert.equal((await call(base, "/health")).status, 200);
  });
});

Deno.test("on loopback with nothing configured the API is open, with a warning line", async () => {
  await scoped(async (defer) => {
    const { app, base, log } = await startHttpApp([
      "--mqttwk.http.api-keys-file=/nonexistent/api-keys",
    ]);
    defer(() => app.stop());
    assert.match(log.text(), /HTTP API on 127\.0\.0\.1 is open to every local process/);
    assert.deepEqual((await call(base, "/api/v1/whoami")).body, {
      user: "anonymous",
      role: "admin",
    });
  });
});
