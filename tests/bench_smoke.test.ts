/**
 * Keeps the benchmark suite from rotting: runs `bench/run.ts --smoke` (a few seconds) and checks
 * that every broker produced a result. Not a timed test: nothing here asserts on speed.
 *
 * With CI=true a broker that cannot be provisioned (no mosquitto binary, failing aedes install)
 * fails the run; without CI such a broker is skipped by the bench and reported here.
 */

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

function assertEquals<T>(actual: T, expected: T, msg: string): void {
  if (actual !== expected) throw new Error(`${msg}\n(expected ${expected}, got ${actual})`);
}

const ROOT = new URL("..", import.meta.url).pathname;
const TIMEOUT_MS = 90_000;

interface SmokeJson {
  skipped: Record<string, string>;
  versions: Record<string, string>;
  results: { scenario: string; broker: string; ok: boolean; msgsPerSec: number }[];
  medians: {
    scenario: string;
    broker: string;
    msgsPerSec: number;
    connections?: number;
    aliasedPct?: number;
  }[];
}

Deno.test({
  name: "bench: --smoke runs every broker end to end",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const json = await Deno.makeTempFile({ prefix: "bench-smoke-", suffix: ".json" });
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), TIMEOUT_MS);
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "bench/run.ts", "--smoke", "--json", json],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
        signal: ac.signal,
      }).output();
    } finally {
      clearTimeout(timer);
    }
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    const context = `exit ${out.code}${out.signal ? ` (${out.signal})` : ""}\n` +
      `--- stdout\n${stdout}\n--- stderr\n${stderr}`;
    assertEquals(out.code, 0, `bench --smoke failed: ${context}`);

    const data: SmokeJson = JSON.parse(await Deno.readTextFile(json));
    await Deno.remove(json).catch(() => {});
    const ci = Deno.env.get("CI") === "true";
    for (const [broker, why] of Object.entries(data.skipped)) {
      // The bench itself fails under CI=true for anything but a MqttWk not written yet.
      assert(!ci || broker.startsWith("mqttwk"), `${broker} skipped under CI: ${why}`);
      console.warn(`bench smoke: ${broker} skipped: ${why}`);
    }
    const ran = Object.keys(data.versions);
    for (const b of ["mosquitto", "aedes"]) {
      if (ci) assert(ran.includes(b), `${b} did not run under CI: ${context}`);
    }
    assert(ran.length > 0, "no broker ran");
    for (const b of ran) {
      const traffic = data.medians.filter((m) => m.broker === b && m.connections === undefined);
      assert(traffic.length > 0, `no traffic result for ${b}: ${context}`);
      for (const m of traffic) {
        assert(m.msgsPerSec > 0, `${b} ${m.scenario}: ${m.msgsPerSec} msgs/s`);
      }
      // The printed table carries the same result.
      const label = { mqttwk: "MqttWk", "mqttwk-durable": "MqttWk durable" }[b] ??
        b[0].toUpperCase() + b.slice(1);
      const rowRe = new RegExp(`^${label}\\s+([\\d,]+)\\s`);
      const row = stdout.split("\n").find((l) => rowRe.test(l));
      assert(row, `no table row for ${b} in the output: ${context}`);
      const rate = Number(row.match(rowRe)![1].replaceAll(",", ""));
      assert(rate > 0, `${b}: table row "${row}" has no msgs/s > 0`);
    }
    for (const r of data.results) assert(r.ok, `${r.scenario} on ${r.broker} failed`);

    // MQTT 5.0: every broker but Aedes (no 5.0) ran the 5.0 scenarios of its QoS, and the report compares
    // them with 3.1.1. With topic aliases allowed, MqttWk sends the alias alone after the first
    // PUBLISH (3.3.2.3.4), so the generator's alias resolution was exercised.
    for (const b of ran.filter((b) => b !== "aedes")) {
      // mqttwk-durable runs QoS 1 only.
      const wanted = b === "mqttwk-durable"
        ? ["p2p-q1-16-v5"]
        : ["p2p-q1-16-v5", "p2p-q0-16-v5-alias"];
      for (const sc of wanted) {
        const m = data.medians.find((x) => x.broker === b && x.scenario === sc);
        assert(m && m.msgsPerSec > 0, `${b} ${sc}: no 5.0 result: ${context}`);
      }
    }
    assert(
      !data.results.some((r) => r.broker === "aedes" && r.scenario.includes("-v5")),
      "Aedes refuses 5.0 and must not run the 5.0 scenarios",
    );
    assert(stdout.includes("== MQTT 5.0 against 3.1.1"), `no 5.0 table: ${context}`);
    if (ran.includes("mqttwk")) {
      const alias = data.medians.find((x) =>
        x.broker === "mqttwk" && x.scenario === "p2p-q0-16-v5-alias"
      );
      assert((alias?.aliasedPct ?? 0) > 50, `MqttWk sent few aliases: ${alias?.aliasedPct}%`);
    }
  },
});
