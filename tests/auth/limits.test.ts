import assert from "node:assert/strict";
import {
  AttemptQueue,
  ConnectionRateLimiter,
  FailureBackoff,
  ipOf,
  isLoopback,
} from "../../src/auth/limits.ts";

Deno.test("the address's port is stripped in IPv4 and IPv6 forms", () => {
  assert.equal(ipOf("192.0.2.1:1883"), "192.0.2.1");
  assert.equal(ipOf("[::1]:50000"), "::1");
  assert.equal(ipOf("::1:50000"), "::1");
  assert.equal(ipOf("2001:db8::7:443"), "2001:db8::7");
  assert.equal(ipOf("[2001:DB8::7]:443"), "2001:db8::7");
  assert.equal(ipOf("::ffff:192.0.2.1:1883"), "192.0.2.1");
  assert.equal(ipOf("[::ffff:192.0.2.1]:1883"), "192.0.2.1");
  assert.equal(ipOf("localhost"), "localhost");
});

Deno.test("the token bucket allows a burst, then the refill rate, per address", () => {
  let now = 1_000_000;
  const rl = new ConnectionRateLimiter(2, 3, () => now);
  assert.deepEqual([1, 2, 3, 4].map(() => rl.take("a")), [true, true, true, false]);
  assert.equal(rl.take("b"), true, "another address has its own bucket");
  now += 499;
  assert.equal(rl.take("a"), false);
  now += 1;
  assert.equal(rl.take("a"), true, "one token back after 1/rate seconds");
  assert.equal(rl.take("a"), false);
  now += 60_000;
  assert.deepEqual(
    [1, 2, 3, 4].map(() => rl.take("a")),
    [true, true, true, false],
    "refill caps at burst",
  );
});

Deno.test("idle addresses are forgotten by the token bucket", () => {
  let now = 0;
  const rl = new ConnectionRateLimiter(10, 10, () => now);
  for (let i = 0; i < 100; i++) rl.take(`10.0.0.${i}`);
  assert.equal(rl.size, 100);
  now += 5_000;
  rl.take("10.0.1.1");
  assert.equal(rl.size, 1);
});

Deno.test("the failure delay doubles per failure, is capped and decays", () => {
  let now = 0;
  const b = new FailureBackoff(2_000, 100, 30_000, () => now);
  assert.equal(b.delayFor("a"), 0);
  b.failed("a");
  assert.equal(b.delayFor("a"), 100);
  b.failed("a");
  assert.equal(b.delayFor("a"), 200);
  b.failed("a");
  assert.equal(b.delayFor("a"), 400);
  for (let i = 0; i < 10; i++) b.failed("a");
  assert.equal(b.delayFor("a"), 2_000, "capped");
  assert.equal(b.delayFor("b"), 0, "other addresses are not slowed");
  now += 30_000 * 5; // five half-lives: 13 -> ~0.4, below half a failure
  assert.equal(b.delayFor("a"), 0);
});

Deno.test("a zero maximum turns the failure delay off", () => {
  const b = new FailureBackoff(0);
  for (let i = 0; i < 5; i++) b.failed("a");
  assert.equal(b.delayFor("a"), 0);
});

Deno.test("loopback means 127.0.0.0/8 and ::1, in every form ipOf gives", () => {
  for (
    const a of ["127.0.0.1:1", "127.0.0.2:5", "127.255.0.9:1", "[::1]:1", "::ffff:127.0.0.1:2"]
  ) {
    assert.equal(isLoopback(ipOf(a)), true, a);
  }
  for (const a of ["10.0.0.1:1", "128.0.0.1:1", "[::2]:1", "localhost", "1127.0.0.1:1"]) {
    assert.equal(isLoopback(ipOf(a)), false, a);
  }
});

Deno.test("attempts from one address run one at a time, other addresses in parallel", async () => {
  const q = new AttemptQueue(10);
  const running = new Map<string, number>();
  let most = 0;
  const releases: (() => void)[] = [];
  const job = (ip: string) => async () => {
    running.set(ip, (running.get(ip) ?? 0) + 1);
    most = Math.max(most, running.get(ip)!);
    await new Promise<void>((r) => releases.push(r));
    running.set(ip, running.get(ip)! - 1);
    return ip;
  };
  const a = [1, 2, 3].map(() => q.run("a", job("a"))!);
  const b = q.run("b", job("b"))!;
  await Promise.resolve();
  assert.equal(releases.length, 2, "one of a's and b's run at once");
  assert.equal(q.pending("a"), 3);
  while (releases.length) {
    releases.shift()!();
    await new Promise((r) => setTimeout(r, 0));
  }
  assert.deepEqual(await Promise.all([...a, b]), ["a", "a", "a", "b"]);
  console.log(`most attempts of one address running at once: ${most}`);
  assert.equal(most, 1);
  assert.equal(q.size, 0, "an address with nothing pending is forgotten");
});

Deno.test("beyond its bound an address's attempt is refused; a failed one frees its place", async () => {
  const q = new AttemptQueue(2);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const first = q.run("a", () => gate)!;
  const second = q.run("a", () => Promise.reject(new Error("provider down")))!;
  assert.equal(q.run("a", () => Promise.resolve()), undefined, "the third is refused");
  assert.notEqual(q.run("b", () => Promise.resolve()), undefined, "another address is not");
  release();
  await first;
  await assert.rejects(second, /provider down/);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(q.pending("a"), 0);
  assert.notEqual(q.run("a", () => Promise.resolve()), undefined, "room again");
});
