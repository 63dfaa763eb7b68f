import assert from "node:assert/strict";
import { ConnectionRateLimiter, FailureBackoff, ipOf } from "../../src/auth/limits.ts";

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
