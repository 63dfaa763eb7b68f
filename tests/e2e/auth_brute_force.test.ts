/**
 * Parallel password guessing over real TCP: the back-off after failed logins holds for an
 * address as a whole, however many connections it opens at once, and the queue of waiting
 * attempts per address is bounded. The attacker is 127.0.0.1 (made subject to the limits with
 * auth.limit-loopback); the honest user comes from 127.0.0.2 with mosquitto_pub -A.
 */
import assert from "node:assert/strict";
import { type Broker, EXTERNAL, scoped, startBroker } from "../helpers/broker.ts";
import { ignoreWithoutCli } from "../helpers/cli.ts";
import * as raw from "../helpers/raw.ts";
import { PacketType as T } from "../helpers/raw.ts";
import { formatHash, hashPassword } from "../../src/auth/password_file.ts";
import { runMosquittoPub, writeTemp } from "../auth/e2e_helpers.ts";

async function passwordFile(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-brute-" });
  return writeTemp(
    dir,
    "passwords",
    `alice:${formatHash(await hashPassword("wonderland", 1000))}\n`,
  );
}

function authBroker(pwFile: string, extra: string[]): Promise<Broker> {
  return startBroker({
    args: [
      "--mqttwk.broker.mqtt-password-must=true",
      `--mqttwk.broker.auth.password-file=${pwFile}`,
      "--mqttwk.broker.auth.limit-loopback=true",
      // The connection rate limit would refuse most of a 200-socket burst before any password
      // is checked; the login queue is what is under test here.
      "--mqttwk.broker.auth.max-connection-rate=0",
      ...extra,
    ],
  });
}

interface Answer {
  code: number;
  /** Milliseconds from the first CONNECT sent to this CONNACK. */
  ms: number;
}

/**
 * Opens `n` sockets, then sends a CONNECT with a wrong password on each at once; resolves with
 * every CONNACK code and when it came, in arrival order.
 */
async function guessInParallel(broker: Broker, n: number): Promise<Answer[]> {
  return await scoped(async (defer) => {
    const clients = await Promise.all(
      Array.from({ length: n }, () => raw.RawClient.open(broker.host, broker.port)),
    );
    for (const c of clients) defer(c.close);
    const t0 = performance.now();
    await Promise.all(
      clients.map((c, i) =>
        c.write(raw.connect({ clientId: `guess-${i}`, username: "alice", password: `wrong-${i}` }))
      ),
    );
    const answers = await Promise.all(clients.map(async (c) => {
      const p = await c.expect(T.CONNACK, 60_000);
      return { code: p.returnCode!, ms: performance.now() - t0 };
    }));
    return answers.sort((a, b) => a.ms - b.ms);
  });
}

Deno.test({
  name: "200 parallel wrong passwords from one address are answered one delay apart, " +
    "while a right password from another address gets in at once",
  ignore: EXTERNAL || ignoreWithoutCli(),
  fn: async () => {
    const DELAY_MS = 20;
    const N = 200;
    const broker = await authBroker(await passwordFile(), [
      `--mqttwk.broker.auth.failure-delay-max=${DELAY_MS}ms`,
      `--mqttwk.broker.auth.max-pending-per-ip=${N}`,
    ]);
    try {
      const flood = guessInParallel(broker, N);
      // The honest login starts once the attacker's queue is certainly long.
      await broker.waitForLog(/refused connection from 127\.0\.0\.1:\d+ \(client guess-/, 10_000);
      const t0 = performance.now();
      const honest = await runMosquittoPub([
        ...["-h", broker.host, "-p", String(broker.port), "-A", "127.0.0.2"],
        ...["-u", "alice", "-P", "wonderland", "-i", "honest", "-t", "bf/ok", "-m", "hi"],
      ]);
      const honestMs = performance.now() - t0;
      const answers = await flood;
      const total = answers[answers.length - 1].ms;
      // The first guess comes before any failure, so it alone is answered without a wait.
      const floor = (N - 1) * DELAY_MS;
      console.log(
        `${N} parallel wrong passwords from 127.0.0.1, delay ${DELAY_MS} ms: last answer after ` +
          `${total.toFixed(0)} ms (floor ${floor} ms, ${(total / (N - 1)).toFixed(1)} ms per ` +
          `guess); right password from 127.0.0.2 by ` +
          `mosquitto_pub in ${honestMs.toFixed(0)} ms (exit ${honest.code})`,
      );
      assert.deepEqual(new Set(answers.map((a) => a.code)), new Set([4]), "all bad credentials");
      assert.ok(total >= floor, `${N} guesses took ${total.toFixed(0)} ms, under ${floor} ms`);
      assert.equal(honest.code, 0, honest.stderr);
      assert.match(broker.logs(), /client honest connected from 127\.0\.0\.2:/);
      assert.ok(
        honestMs < 1_500 && honestMs < total / 2,
        `the other address waited ${honestMs.toFixed(0)} ms`,
      );
    } finally {
      await broker.stop();
    }
  },
});

Deno.test({
  name: "beyond max-pending-per-ip an address's logins are refused at once with CONNACK 3 " +
    "and the refusals are logged once a second, not once each",
  ignore: EXTERNAL,
  fn: async () => {
    const DELAY_MS = 1000;
    const BOUND = 8;
    const N = 200;
    const broker = await authBroker(await passwordFile(), [
      `--mqttwk.broker.auth.failure-delay-max=${DELAY_MS}ms`,
      `--mqttwk.broker.auth.max-pending-per-ip=${BOUND}`,
    ]);
    try {
      // Five failures first (waits 0, 100, 200, 400, 800 ms as the back-off doubles), so every
      // queued guess waits the whole delay and no queue slot frees up while the burst arrives.
      for (let i = 0; i < 5; i++) assert.equal((await guessInParallel(broker, 1))[0].code, 4);
      const answers = await guessInParallel(broker, N);
      const refused = answers.filter((a) => a.code === 3);
      const checked = answers.filter((a) => a.code === 4);
      const lastRefusal = Math.max(...refused.map((a) => a.ms));
      const logLines = broker.logs().split("\n").filter((l) =>
        l.includes("refusing authentication attempts from 127.0.0.1")
      );
      // The core's own line per refused CONNECT (client.ts) comes on top; reported, not tested.
      const perConnection = broker.logs().split("\n").filter((l) =>
        l.includes("too many pending authentication attempts")
      ).length;
      const seconds = answers[answers.length - 1].ms / 1000;
      console.log(
        `${N} parallel wrong passwords, max-pending-per-ip ${BOUND}, delay ${DELAY_MS} ms: ` +
          `${checked.length} checked (last after ${checked.at(-1)?.ms.toFixed(0)} ms), ` +
          `${refused.length} refused with CONNACK 3 (last after ${lastRefusal.toFixed(0)} ms); ` +
          `${logLines.length} warning lines in ${seconds.toFixed(1)} s (and ${perConnection} ` +
          `per-connection info lines from the core)`,
      );
      assert.equal(checked.length, BOUND, "exactly the bound is queued and checked");
      assert.equal(refused.length, N - BOUND);
      assert.ok(lastRefusal < DELAY_MS, `refusals are at once (last ${lastRefusal} ms)`);
      assert.ok(
        checked[BOUND - 1].ms >= BOUND * DELAY_MS,
        "the queued ones still wait their turn, one delay each",
      );
      assert.ok(logLines.length >= 1 && logLines.length <= Math.ceil(seconds) + 1);
      assert.match(logLines[0], /8 already pending \(mqttwk\.broker\.auth\.max-pending-per-ip\)/);
    } finally {
      await broker.stop();
    }
  },
});
