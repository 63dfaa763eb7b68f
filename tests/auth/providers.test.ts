import assert from "node:assert/strict";
import { formatHash, hashPassword } from "../../src/auth/password_file.ts";
import {
  HttpHookProvider,
  PasswordFileProvider,
  type Provider,
  RsaProvider,
  runChain,
  type Verdict,
} from "../../src/auth/providers.ts";
import {
  DEMO_PASSWORD,
  DEMO_PUBLIC_PEM,
  DEMO_USER,
  memoryLogger,
  request,
  tempDir,
} from "./fixtures.ts";

Deno.test("the rsa provider allows the demo credentials and denies others", async () => {
  const dir = await tempDir();
  try {
    await Deno.writeTextFile(`${dir}/demo.pem`, DEMO_PUBLIC_PEM);
    const p = new RsaProvider(`${dir}/demo.pem`);
    (await p.load())();
    assert.deepEqual(await p.check(request({ username: DEMO_USER, pw: DEMO_PASSWORD })), {
      kind: "allow",
    });
    assert.equal((await p.check(request({ username: "other", pw: DEMO_PASSWORD }))).kind, "deny");
    const other = "0".repeat(127) + "1";
    assert.equal((await p.check(request({ username: DEMO_USER, pw: other }))).kind, "deny");
    assert.equal((await p.check(request({ username: DEMO_USER, pw: "nope" }))).kind, "ignore");
    assert.equal((await p.check(request({ username: DEMO_USER }))).kind, "ignore");
    await assert.rejects(() => new RsaProvider(`${dir}/missing.pem`).load(), /missing\.pem/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the password-file provider allows, denies and ignores unknown users", async () => {
  const dir = await tempDir();
  try {
    const file = `${dir}/pw`;
    const e = await hashPassword("wonderland", 1000);
    await Deno.writeTextFile(file, `alice:${formatHash(e)}\n`);
    const p = new PasswordFileProvider(file);
    (await p.load())();
    assert.equal((await p.check(request({ username: "alice", pw: "wonderland" }))).kind, "allow");
    assert.equal((await p.check(request({ username: "alice", pw: "wonderlan" }))).kind, "deny");
    assert.equal((await p.check(request({ username: "alice" }))).kind, "deny");
    assert.equal((await p.check(request({ username: "bob", pw: "wonderland" }))).kind, "ignore");

    // A broken file on reload is reported, and nothing is installed.
    await Deno.writeTextFile(file, "garbage\n");
    await assert.rejects(() => p.load(), /line 1/);
    assert.equal((await p.check(request({ username: "alice", pw: "wonderland" }))).kind, "allow");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

interface Hook {
  url: string;
  bodies: Record<string, unknown>[];
  /** The answer for the next requests. */
  reply: (body: Record<string, unknown>) => Response | Promise<Response>;
  close(): Promise<void>;
}

function startHook(): Hook {
  const hook = {
    bodies: [] as Record<string, unknown>[],
    reply: (_: Record<string, unknown>): Response | Promise<Response> =>
      Response.json({ result: "allow" }),
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = await req.json();
    hook.bodies.push(body);
    return hook.reply(body);
  });
  return Object.assign(hook, {
    url: `http://127.0.0.1:${server.addr.port}/auth`,
    close: () => server.shutdown(),
  });
}

Deno.test("the http hook is POSTed the connection's details and its answer is followed", async () => {
  const hook = startHook();
  const log = memoryLogger();
  try {
    const p = new HttpHookProvider({ url: hook.url, timeout: 2, cacheTtl: 0, log });
    const req = request({ clientId: "dev-9", username: "alice", pw: "pa55" });
    assert.deepEqual(await p.check(req), { kind: "allow" });
    assert.deepEqual(hook.bodies[0], {
      clientId: "dev-9",
      username: "alice",
      password: "pa55",
      remoteAddress: "127.0.0.1:50000",
      transport: "tcp",
      protocolVersion: 4,
    });
    const cases: [() => Response, Verdict["kind"], number?][] = [
      [() => new Response(null, { status: 200 }), "allow"],
      [() => new Response(null, { status: 204 }), "allow"],
      [() => Response.json({ result: "ok" }), "allow"],
      [() => Response.json({ result: "deny" }), "deny", 4],
      [() => new Response("no", { status: 401 }), "deny", 4],
      [() => new Response("no", { status: 403 }), "deny", 5],
      [() => Response.json({ result: "ignore" }), "ignore"],
      [() => new Response("oops", { status: 500 }), "error"],
      [() => new Response("not json", { status: 200 }), "error"],
      [() => Response.json({ result: "maybe" }), "error"],
    ];
    for (const [reply, kind, code] of cases) {
      hook.reply = reply;
      const v = await p.check(req);
      assert.equal(v.kind, kind, `${reply().status} ${await reply().text()}`);
      if (code !== undefined) assert.equal((v as { code: number }).code, code);
    }
    assert.equal(
      log.lines.filter((l) => l.includes("pa55")).length,
      0,
      "the password is never logged",
    );
  } finally {
    await hook.close();
  }
});

Deno.test("the http hook's answers are cached per credentials, errors are not", async () => {
  const hook = startHook();
  try {
    const p = new HttpHookProvider({
      url: hook.url,
      timeout: 2,
      cacheTtl: 0.3,
      log: memoryLogger(),
    });
    const a = request({ clientId: "c", username: "alice", pw: "1" });
    await p.check(a);
    await p.check(a);
    assert.equal(hook.bodies.length, 1, "second answer from the cache");
    await p.check(request({ clientId: "c", username: "alice", pw: "2" }));
    await p.check(request({ clientId: "d", username: "alice", pw: "1" }));
    assert.equal(hook.bodies.length, 3, "other password or client id asks again");

    hook.reply = () => Response.json({ result: "deny" });
    const b = request({ clientId: "c", username: "bob", pw: "x" });
    assert.equal((await p.check(b)).kind, "deny");
    hook.reply = () => Response.json({ result: "allow" });
    assert.equal((await p.check(b)).kind, "deny", "a deny is cached too");
    // Fixed on purpose: the 0.3 s cache TTL must run out.
    await new Promise((r) => setTimeout(r, 350));
    assert.equal((await p.check(b)).kind, "allow", "until it expires");

    hook.reply = () => new Response("", { status: 503 });
    const c = request({ clientId: "e", username: "carol", pw: "x" });
    assert.equal((await p.check(c)).kind, "error");
    hook.reply = () => Response.json({ result: "allow" });
    assert.equal((await p.check(c)).kind, "allow", "an error is not cached");
  } finally {
    await hook.close();
  }
});

Deno.test("a slow or unreachable http hook is an error with a clear log line", async () => {
  const hook = startHook();
  const log = memoryLogger();
  let slowReply: Promise<Response> | undefined;
  try {
    const p = new HttpHookProvider({ url: hook.url, timeout: 0.2, cacheTtl: 10, log });
    // Fixed on purpose: an answer later than the provider's 0.2 s timeout.
    hook.reply = () =>
      slowReply = new Promise((r) => setTimeout(() => r(Response.json({ result: "allow" })), 600));
    const started = Date.now();
    const v = await p.check(request({ username: "alice", pw: "secret-pw" }));
    assert.equal(v.kind, "error");
    assert.ok(Date.now() - started < 550, "gave up at the timeout");
    assert.match(
      log.lines.join("\n"),
      /WARN auth hook http:\/\/127\.0\.0\.1:\d+\/auth no answer within 0\.2 s/,
    );
  } finally {
    await slowReply;
    await hook.close();
  }
  const down = new HttpHookProvider({ url: hook.url, timeout: 1, cacheTtl: 10, log });
  log.lines.length = 0;
  const v = await down.check(request({ username: "alice", pw: "secret-pw" }));
  assert.equal(v.kind, "error");
  assert.match(log.lines.join("\n"), /WARN auth hook .* unreachable/);
  assert.ok(!log.lines.join("\n").includes("secret-pw"));
});

Deno.test("credentials in the http hook's URL are sent as Basic authorization", async () => {
  let seen: string | null = null;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    seen = req.headers.get("authorization");
    return Response.json({ result: "allow" });
  });
  try {
    const p = new HttpHookProvider({
      url: `http://hook%20user:p%40ss@127.0.0.1:${server.addr.port}/auth`,
      timeout: 2,
      cacheTtl: 0,
      log: memoryLogger(),
    });
    assert.equal((await p.check(request({ username: "a", pw: "b" }))).kind, "allow");
    assert.equal(seen, `Basic ${btoa("hook user:p@ss")}`);
  } finally {
    await server.shutdown();
  }
});

Deno.test("the http hook's URL credentials are not logged", async () => {
  const log = memoryLogger();
  const p = new HttpHookProvider({
    url: "http://hookuser:hookpass@127.0.0.1:1/auth",
    timeout: 1,
    cacheTtl: 0,
    log,
  });
  assert.equal((await p.check(request({ username: "a", pw: "b" }))).kind, "error");
  assert.ok(log.lines.length > 0);
  assert.ok(!log.lines.join("\n").includes("hookpass"));
});

function fixed(name: string, v: Verdict): Provider & { calls: number } {
  const p = {
    name,
    calls: 0,
    check: () => {
      p.calls++;
      return Promise.resolve(v);
    },
  };
  return p;
}

const allow: Verdict = { kind: "allow" };
const deny4: Verdict = { kind: "deny", code: 4, why: "wrong" };
const deny5: Verdict = { kind: "deny", code: 5, why: "forbidden" };
const ignore: Verdict = { kind: "ignore", why: "unknown" };
const error: Verdict = { kind: "error", why: "down" };

Deno.test("the chain stops at the first allow, in the configured order", async () => {
  const a = fixed("a", deny4), b = fixed("b", allow), c = fixed("c", allow);
  assert.deepEqual(await runChain([a, b, c], request({ username: "u", pw: "p" })), {
    ok: true,
    verified: true,
  });
  assert.deepEqual([a.calls, b.calls, c.calls], [1, 1, 0]);
});

Deno.test("the chain refuses with 4, 5 or 3 depending on the answers", async () => {
  const code = async (...vs: Verdict[]) => {
    const r = await runChain(
      vs.map((v, i) => fixed(`p${i}`, v)),
      request({ username: "u", pw: "p" }),
    );
    assert.equal(r.ok, false);
    return (r as { reasonCode: number }).reasonCode;
  };
  assert.equal(await code(deny4, deny4), 4, "all deny: bad username or password");
  assert.equal(await code(ignore, ignore), 4, "nobody knows the user");
  assert.equal(await code(deny4, deny5), 5, "one says not authorized");
  assert.equal(await code(ignore, error), 3, "only an outage: server unavailable");
  assert.equal(await code(deny4, error), 4, "a real deny beats an outage");
  const r = await runChain([fixed("x", deny4)], request({ username: "u", pw: "topsecret" }));
  assert.ok(!JSON.stringify(r).includes("topsecret"));
  assert.match(JSON.stringify(r), /bad username or password \(user \\"u\\"; x: wrong\)/);
});
